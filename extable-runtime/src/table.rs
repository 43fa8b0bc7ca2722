//! The tables: the main one the linker collects, and module tables registered at run time.
//!
//! As in Linux's `kernel/extable.c`, a lookup searches the main table first, then every
//! registered module. The main table is sorted at build time by `extable-tool sort`, which
//! clears the sort marker; a table whose marker is still set is checked at init in O(n),
//! sorted in place when the caller says it is writable, and otherwise searched linearly, so
//! a lookup is always correct.
//!
//! Module tables come and go while other CPUs look faults up: they follow the read/retire
//! protocol described in [`Registry`] (a lookup hands out only copies, or runs the caller's
//! code inside the read section; unregistering waits for the readers).

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::entry::{ExceptionTableEntry, ENTRY_SIZE};
use crate::report::{report, Level};
use crate::search::{search, search_linear};
use crate::sort::{is_sorted, sort, SortError};

/// How a table came to be searchable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// `extable-tool sort` sorted it in the file and cleared the marker; verified at init.
    SortedByTool,
    /// Already in order although the marker was set.
    AlreadySorted,
    /// Sorted in place at init.
    SortedAtInit,
    /// Not sorted and not writable (or not sortable): searched linearly.
    Unsorted,
}

/// What init found out about a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableReport {
    /// Number of entries.
    pub entries: usize,
    /// How lookups will work.
    pub order: Order,
    /// Entries that share an instruction with the previous entry but not its fixup or handler
    /// (each is reported through [`crate::report`]). Checked on sorted tables only.
    pub conflicts: usize,
    /// Identical duplicate entries: legal, counted for information.
    pub duplicates: usize,
    /// Set when the marker said "sorted" but the table was not: a broken build step.
    pub marker_lied: bool,
}

/// Count identical and conflicting neighbours of a sorted table, reporting each conflict.
fn scan_duplicates(name: &str, table: &[ExceptionTableEntry]) -> (usize, usize) {
    let (mut conflicts, mut duplicates) = (0, 0);
    for (i, pair) in table.windows(2).enumerate() {
        let (a, b) = (pair[0].targets(), pair[1].targets());
        if a.insn != b.insn {
            continue;
        }
        if a == b {
            duplicates += 1;
        } else {
            conflicts += 1;
            report(
                Level::Warning,
                format_args!(
                    "extable: {name}: conflicting entries {} and {} for insn {:#x}: fixup {:#x}/{:#x}, handler {:#x}/{:#x}",
                    i, i + 1, a.insn, a.fixup, b.fixup, a.handler, b.handler
                ),
            );
        }
    }
    (conflicts, duplicates)
}

/// The order a table is in, and whether the marker claimed a sort that did not happen.
fn classify(name: &str, table: &[ExceptionTableEntry], marker_sorted: bool) -> (Order, bool) {
    let sorted = is_sorted(table);
    let marker_lied = marker_sorted && !sorted;
    if marker_lied {
        report(
            Level::Warning,
            format_args!("extable: {name}: marked sorted but is not"),
        );
    }
    let order = match (sorted, marker_sorted) {
        (true, true) => Order::SortedByTool,
        (true, false) => Order::AlreadySorted,
        (false, _) => Order::Unsorted,
    };
    (order, marker_lied)
}

/// Describe a table whose order is settled.
fn finish(
    name: &str,
    table: &[ExceptionTableEntry],
    order: Order,
    marker_lied: bool,
) -> TableReport {
    let (conflicts, duplicates) = if order == Order::Unsorted {
        (0, 0)
    } else {
        scan_duplicates(name, table)
    };
    TableReport {
        entries: table.len(),
        order,
        conflicts,
        duplicates,
        marker_lied,
    }
}

/// Check a table that must not be written.
fn prepare_readonly(name: &str, table: &[ExceptionTableEntry], marker_sorted: bool) -> TableReport {
    let (order, marker_lied) = classify(name, table, marker_sorted);
    finish(name, table, order, marker_lied)
}

/// Check a writable table and sort it in place when it is out of order.
fn prepare_writable(
    name: &str,
    table: &mut [ExceptionTableEntry],
    marker_sorted: bool,
) -> TableReport {
    let (mut order, marker_lied) = classify(name, table, marker_sorted);
    if order == Order::Unsorted {
        order = match sort(table) {
            Ok(()) => Order::SortedAtInit,
            Err(SortError::OffsetOverflow { index }) => {
                report(
                    Level::Warning,
                    format_args!("extable: {name}: entry {index} cannot move without overflow; searching linearly"),
                );
                Order::Unsorted
            }
        };
    }
    finish(name, table, order, marker_lied)
}

/// Search `table` the way its order allows.
fn lookup(
    table: &[ExceptionTableEntry],
    order: Order,
    addr: usize,
) -> Option<&ExceptionTableEntry> {
    match order {
        Order::Unsorted => search_linear(table, addr),
        _ => search(table, addr),
    }
}

const STATE_UNINIT: u8 = 0;

fn encode_order(order: Order) -> u8 {
    match order {
        Order::SortedByTool => 2,
        Order::AlreadySorted => 3,
        Order::SortedAtInit => 4,
        Order::Unsorted => 5,
    }
}

fn decode_order(state: u8) -> Option<Order> {
    match state {
        2 => Some(Order::SortedByTool),
        3 => Some(Order::AlreadySorted),
        4 => Some(Order::SortedAtInit),
        5 => Some(Order::Unsorted),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The main table.

/// The sort marker: 1 until `extable-tool sort` writes 0 into the file
/// (see [`crate::entry::SORT_MARKER_SYMBOL`]). An atomic, so the compiler never folds it.
#[export_name = "extable_main_sort_needed"]
#[used]
static SORT_NEEDED: AtomicU32 = AtomicU32::new(1);

// An empty piece of the section, with a symbol in it that `main_bounds` refers to: it keeps
// `__ex_table` (and so `__start___ex_table`) in every image, even one without entries.
// Flags "aR" as every entry (see `entry::ASM_SECTION_FLAGS`): one object may not mix flags.
core::arch::global_asm!(
    ".pushsection __ex_table, \"aR\"",
    ".balign 4",
    ".globl extable_section_anchor",
    "extable_section_anchor:",
    ".popsection",
);

extern "C" {
    static __start___ex_table: [ExceptionTableEntry; 0];
    static __stop___ex_table: [ExceptionTableEntry; 0];
    static extable_section_anchor: [ExceptionTableEntry; 0];
}

static MAIN_STATE: AtomicU8 = AtomicU8::new(STATE_UNINIT);

/// Whether the build step marked the main table as sorted.
pub fn main_marked_sorted() -> bool {
    SORT_NEEDED.load(Ordering::Relaxed) == 0
}

/// The main table's bounds, as the linker placed them.
fn main_bounds() -> (*mut ExceptionTableEntry, usize) {
    // Taking the address of an extern static reads nothing.
    let (start, stop, anchor) = (
        core::ptr::addr_of!(__start___ex_table) as usize,
        core::ptr::addr_of!(__stop___ex_table) as usize,
        core::ptr::addr_of!(extable_section_anchor) as usize,
    );
    debug_assert!(start <= anchor && anchor <= stop);
    let len = stop.saturating_sub(start) / ENTRY_SIZE;
    (start as *mut ExceptionTableEntry, len)
}

/// The main table, as the linker collected it from `__ex_table`.
pub fn main_entries() -> &'static [ExceptionTableEntry] {
    let (start, len) = main_bounds();
    // SAFETY: the linker places `len` entries between the start and stop symbols; they live
    // for the whole program. Writers (`init_main_table_writable`) run before any reader.
    unsafe { core::slice::from_raw_parts(start, len) }
}

fn init_main(writable: bool) -> TableReport {
    let (start, len) = main_bounds();
    let report = if writable {
        // SAFETY: the caller of `init_main_table_writable` guarantees the section is
        // writable and that nothing else reads it while it is being sorted.
        let table = unsafe { core::slice::from_raw_parts_mut(start, len) };
        prepare_writable("main", table, main_marked_sorted())
    } else {
        prepare_readonly("main", main_entries(), main_marked_sorted())
    };
    MAIN_STATE.store(encode_order(report.order), Ordering::Release);
    report
}

/// Check the main table without writing it: verify its order in O(n) and pick the search
/// (binary when sorted, linear otherwise). Idempotent; called lazily by the first lookup.
pub fn init_main_table() -> TableReport {
    init_main(false)
}

/// Check the main table and sort it in place if needed (Linux's boot-time `sort_main_extable`).
///
/// # Safety
/// The `__ex_table` section must be mapped writable, and no fault may be looked up
/// concurrently (call it once, early, before anything can fault).
pub unsafe fn init_main_table_writable() -> TableReport {
    init_main(true)
}

#[cfg_attr(feature = "loom", allow(dead_code))]
fn main_order() -> Order {
    let state = MAIN_STATE.load(Ordering::Acquire);
    match decode_order(state) {
        Some(order) => order,
        None => init_main_table().order,
    }
}

// ---------------------------------------------------------------------------------------
// Module tables.

mod modules;

pub use modules::{Module, Registry, RegistryFull};

/// How many module tables can be registered at once.
pub const MAX_MODULES: usize = 32;

#[cfg(not(feature = "loom"))]
static MODULES: Registry<MAX_MODULES> = Registry::new();

/// Make a loaded module's table searchable by [`search_exception_tables`].
#[cfg(not(feature = "loom"))]
pub fn register_module(module: &'static Module) -> Result<(), RegistryFull> {
    MODULES.register(module)
}

/// Stop searching a module's table. Returns once no lookup can see it any more (see
/// [`Registry::unregister`]): then its memory may be freed or reused. Never call it from an
/// exception handler.
#[cfg(not(feature = "loom"))]
pub fn unregister_module(module: &'static Module) {
    MODULES.unregister(module)
}

/// Find the entry for a faulting instruction at `addr` (the main table first, then each
/// registered module, as Linux's `search_exception_tables`) and run `f` on it; for a module's
/// entry, inside the module's read section.
#[cfg(not(feature = "loom"))]
pub fn with_exception_entry<R>(
    addr: usize,
    f: impl FnOnce(&ExceptionTableEntry) -> R,
) -> Option<R> {
    if let Some(entry) = lookup(main_entries(), main_order(), addr) {
        return Some(f(entry));
    }
    MODULES.with_entry(addr, f)
}

/// The resolved targets of the entry for a faulting instruction at `addr`, copied out of
/// its table (Linux's `search_exception_tables`).
#[cfg(not(feature = "loom"))]
pub fn search_exception_tables(addr: usize) -> Option<crate::entry::Targets> {
    with_exception_entry(addr, ExceptionTableEntry::targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Targets;
    use std::vec::Vec;

    fn table_with_insns(insns: &[usize]) -> Vec<ExceptionTableEntry> {
        let mut table: Vec<ExceptionTableEntry> = insns
            .iter()
            .map(|_| ExceptionTableEntry {
                insn: 0,
                fixup: 0,
                handler: 0,
            })
            .collect();
        let base = table.as_ptr() as usize;
        for (i, &insn) in insns.iter().enumerate() {
            let targets = Targets {
                insn: base + insn,
                fixup: base + insn + 1,
                handler: base,
            };
            let [insn, fixup, handler] =
                ExceptionTableEntry::encode(base + i * ENTRY_SIZE, targets).unwrap();
            table[i] = ExceptionTableEntry {
                insn,
                fixup,
                handler,
            };
        }
        table
    }

    #[test]
    fn unsorted_read_only_table_is_searched_linearly_and_left_alone() {
        let table = table_with_insns(&[0x300, 0x100, 0x200]);
        let before: Vec<i32> = table.iter().map(|e| e.insn).collect();
        let report = prepare_readonly("ro", &table, false);
        assert_eq!(report.order, Order::Unsorted);
        let after: Vec<i32> = table.iter().map(|e| e.insn).collect();
        assert_eq!(before, after);
        let base = table.as_ptr() as usize;
        for insn in [0x100, 0x200, 0x300] {
            assert_eq!(
                lookup(&table, report.order, base + insn).map(|e| e.fixup_addr()),
                Some(base + insn + 1)
            );
        }
        // The binary search would miss on this table: the order really matters.
        assert!(search(&table, base + 0x300).is_none() || search(&table, base + 0x100).is_none());
    }

    #[test]
    fn a_marker_that_claims_a_sort_that_did_not_happen_is_caught() {
        let mut table = table_with_insns(&[0x300, 0x100]);
        let report = prepare_writable("lie", &mut table, true);
        assert!(report.marker_lied);
        assert_eq!(report.order, Order::SortedAtInit);
        let sorted = table_with_insns(&[0x100, 0x300]);
        assert_eq!(
            prepare_readonly("ok", &sorted, true).order,
            Order::SortedByTool
        );
        assert_eq!(
            prepare_readonly("ok", &sorted, false).order,
            Order::AlreadySorted
        );
    }
}
