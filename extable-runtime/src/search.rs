//! Looking an address up in a table.
//!
//! [`search`] is the runtime's lookup: a branchless binary search (the loop has no
//! data-dependent branch; the compare becomes a conditional move) with prefetch of both
//! possible next probes on large tables. [`search_linux`] is a faithful port of Linux's
//! `lib/extable.c` `search_extable` over `lib/bsearch.c`, kept as the baseline the
//! benchmark compares against. [`search_linear`] is correct on unsorted tables.

use crate::entry::ExceptionTableEntry;

/// Tables with at least this many entries prefetch the next two probes.
const PREFETCH_MIN_LEN: usize = 1 << 12;

/// Find the entry whose instruction is at `addr` in a table sorted by instruction address.
///
/// O(log n). With identical duplicate entries any of them may be returned; with conflicting
/// duplicates (see [`crate::table`]) the last one is.
#[inline]
pub fn search(table: &[ExceptionTableEntry], addr: usize) -> Option<&ExceptionTableEntry> {
    if table.is_empty() {
        return None;
    }
    let entry = if table.len() >= PREFETCH_MIN_LEN {
        lower_bound::<true>(table, addr)
    } else {
        lower_bound::<false>(table, addr)
    };
    (entry.insn_addr() == addr).then_some(entry)
}

/// The last entry whose instruction is at or below `addr` (or the first entry). The loop has
/// no data-dependent branch: each step is a conditional move, and the trip count depends
/// only on the length.
#[inline(always)]
fn lower_bound<const PREFETCH: bool>(
    table: &[ExceptionTableEntry],
    addr: usize,
) -> &ExceptionTableEntry {
    let mut base = table.as_ptr();
    let mut len = table.len();
    while len > 1 {
        let half = len / 2;
        // SAFETY: `base + len` never passes the end of `table` (it starts there, and each step
        // either keeps `base` and drops the top `half`, or moves `base` up by `half` and drops
        // `half`), so `base + half` and the prefetched `base + half / 2` and
        // `base + half + half / 2` (all below `base + len`) are inside the table.
        unsafe {
            let mid = base.add(half);
            if PREFETCH {
                prefetch(base.add(half / 2));
                prefetch(mid.add(half / 2));
            }
            base = core::hint::select_unpredictable((*mid).insn_addr() <= addr, mid, base);
        }
        len -= half;
    }
    // SAFETY: `base` points inside the non-empty table (see above).
    unsafe { &*base }
}

#[inline(always)]
fn prefetch(entry: *const ExceptionTableEntry) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint and never faults; the pointer is inside the table.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(entry as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = entry;
}

/// Find the entry for `addr` by looking at every entry: correct on an unsorted table.
pub fn search_linear(table: &[ExceptionTableEntry], addr: usize) -> Option<&ExceptionTableEntry> {
    table.iter().rev().find(|e| e.insn_addr() == addr)
}

/// Linux's `cmp_ex_search` (lib/extable.c): compare the key with `ex_to_insn(elt)`.
fn cmp_ex_search(key: &usize, elt: &ExceptionTableEntry) -> i32 {
    let insn = elt.insn_addr();
    if *key > insn {
        1
    } else if *key < insn {
        -1
    } else {
        0
    }
}

/// A port of Linux's out-of-line `bsearch` (lib/bsearch.c), comparison through a function
/// pointer as in the kernel.
#[inline(never)]
pub fn bsearch_linux<'a>(
    key: &usize,
    mut base: &'a [ExceptionTableEntry],
    cmp: fn(&usize, &ExceptionTableEntry) -> i32,
) -> Option<&'a ExceptionTableEntry> {
    let mut num = base.len();
    while num > 0 {
        let pivot = num >> 1;
        let result = cmp(key, &base[pivot]);
        if result == 0 {
            return Some(&base[pivot]);
        }
        if result > 0 {
            base = &base[pivot + 1..];
            num -= 1;
        }
        num >>= 1;
    }
    None
}

/// Linux's `search_extable(base, num, value)`: the baseline of the lookup benchmark.
pub fn search_linux(table: &[ExceptionTableEntry], addr: usize) -> Option<&ExceptionTableEntry> {
    bsearch_linux(&addr, table, cmp_ex_search)
}
