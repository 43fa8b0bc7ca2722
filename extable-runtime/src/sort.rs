//! Sorting a table in place, as Linux's `sort_extable` with `swap_ex` does.
//!
//! Entries are self-relative, so moving one changes what it points to unless its fields are
//! adjusted by the distance moved. Sorting is a heapsort (no allocation, O(n log n), like
//! `lib/sort.c`) whose swap adjusts all three fields.

use crate::entry::{adjust_for_move_in, AddressWidth, ExceptionTableEntry, ENTRY_SIZE};

/// Moves happen in this machine's address space.
fn adjust_for_move(offset: i32, delta: i64) -> Option<i32> {
    adjust_for_move_in(offset, delta, AddressWidth::NATIVE)
}

/// Why a table cannot be sorted in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortError {
    /// Entry `index` points to a target that some other slot of the table cannot reach with
    /// an `i32` offset, so moving it there would corrupt it. Nothing was written. (Only in a
    /// 64-bit address space: a 32-bit one wraps, so every slot reaches every target.)
    OffsetOverflow {
        /// The entry that cannot move freely.
        index: usize,
    },
}

/// Whether the table is sorted by instruction address (ascending, duplicates allowed). O(n).
pub fn is_sorted(table: &[ExceptionTableEntry]) -> bool {
    table
        .windows(2)
        .all(|w| w[0].insn_addr() <= w[1].insn_addr())
}

/// Check that every entry could be stored in every slot of the table without overflowing its
/// offsets. Extremes are the first and the last slot, so two checks per field suffice.
pub fn check_movable(table: &[ExceptionTableEntry]) -> Result<(), SortError> {
    let span = (table.len().saturating_sub(1) * ENTRY_SIZE) as i64;
    for (index, entry) in table.iter().enumerate() {
        let here = (index * ENTRY_SIZE) as i64;
        for offset in [entry.insn, entry.fixup, entry.handler] {
            // Moving to slot 0 shifts by -here, to the last slot by span - here.
            if adjust_for_move(offset, -here).is_none()
                || adjust_for_move(offset, span - here).is_none()
            {
                return Err(SortError::OffsetOverflow { index });
            }
        }
    }
    Ok(())
}

/// Linux's `swap_ex`: exchange entries `i` and `j`, adjusting each field by the distance so
/// both keep pointing at their targets. The caller has checked [`check_movable`].
fn swap_ex(table: &mut [ExceptionTableEntry], i: usize, j: usize) {
    if i == j {
        return;
    }
    let delta = (j as i64 - i as i64) * ENTRY_SIZE as i64;
    let adjust = |offset: i32, by: i64| adjust_for_move(offset, by).unwrap_or(offset);
    let (a, b) = (
        [table[i].insn, table[i].fixup, table[i].handler],
        [table[j].insn, table[j].fixup, table[j].handler],
    );
    // Entry a moves from i to j (by +delta), entry b from j to i (by -delta).
    table[j].insn = adjust(a[0], delta);
    table[j].fixup = adjust(a[1], delta);
    table[j].handler = adjust(a[2], delta);
    table[i].insn = adjust(b[0], -delta);
    table[i].fixup = adjust(b[1], -delta);
    table[i].handler = adjust(b[2], -delta);
}

/// Sort the table in place by instruction address (Linux's `sort_extable`).
///
/// Refuses, writing nothing, when an entry could not be moved without overflowing.
pub fn sort(table: &mut [ExceptionTableEntry]) -> Result<(), SortError> {
    check_movable(table)?;
    let n = table.len();
    // Heapsort: build a max-heap, then move the maximum to the end repeatedly.
    for start in (0..n / 2).rev() {
        sift_down(table, start, n);
    }
    for end in (1..n).rev() {
        swap_ex(table, 0, end);
        sift_down(table, 0, end);
    }
    Ok(())
}

fn sift_down(table: &mut [ExceptionTableEntry], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && table[child].insn_addr() < table[child + 1].insn_addr() {
            child += 1;
        }
        if table[root].insn_addr() >= table[child].insn_addr() {
            return;
        }
        swap_ex(table, root, child);
        root = child;
    }
}
