//! Validation rules, one small function each.
//!
//! | rule                    | severity | what                                                     |
//! |-------------------------|----------|----------------------------------------------------------|
//! | `size`                  | error    | the table is not a whole number of entries               |
//! | `align`                 | error    | the table address is not aligned for its entries         |
//! | `insn-not-code`         | error    | insn outside every executable (`SHF_EXECINSTR`) section  |
//! | `fixup-not-code`        | error    | fixup outside every executable section                   |
//! | `handler-not-function`  | error    | handler points at no function symbol (relative handlers) |
//! | `unknown-type`          | error    | the data word's fixup type is unknown (Linux data words) |
//! | `conflicting-duplicate` | error    | two entries for one insn that differ                     |
//! | `unsorted-but-marked`   | error    | the marker says sorted but the table is not              |
//! | `offset-overflow`       | error    | a self-relative field would overflow if moved (or an s390 |
//! |                         |          | 64-bit handler would read 0, none)                       |
//! | `bad-marker-value`      | error    | the marker is neither 0 (sorted) nor 1 (sort needed)     |
//! | `fixup-outside-function`| warning  | `extable` layout: fixup inside another function          |
//! | `writable-table`        | warning  | `extable` layout: the table is in a writable segment     |
//! | `no-marker`             | warning  | the file has no sort marker for this layout              |
//! | `identical-duplicate`   | note     | two identical entries                                    |
//! | `not-sorted-yet`        | note     | unsorted, and the marker says a sort is needed           |
//!
//! The two placement warnings judge this project's layout only. Linux places fixups in
//! `.fixup` sections that its linker script merges into `.text`, at local labels (`.E_copy`)
//! and in exits shared by several functions, and keeps its table in writable data by
//! design: on a Linux layout neither is a sign of a defect. For the `extable` layout a fixup
//! stub in code that no function symbol covers is normal too (rust-lld's default layout
//! merges `.text.fixup` into `.text`); a fixup that lands inside *another* function's
//! symbol is not, nor is a table the linker put in writable memory (the macros emit it
//! read-only).
//!
//! [`crate::insn`] adds the instruction-level rules when the file has code bytes.

use crate::analysis::Analysis;
use crate::layout::{Layout, Third};
use crate::records;
use crate::report::{Address, Finding, Findings, MarkerState, Report, Severity};
use crate::symbols::{FunctionCursor, StartCache};
use crate::table::{self, Entry, Extra, Overflow, Table};

/// The rule of a table whose marker says sorted while it is not: the one error that sorting
/// the table cures ([`crate::sort::plan`] takes it on).
pub const UNSORTED_BUT_MARKED: &str = "unsorted-but-marked";

/// What a check computed besides the findings, reused by `sort`.
#[derive(Debug)]
pub struct Checked {
    /// The report.
    pub report: Report,
    /// How many entries change slots when the table is sorted.
    pub moved: usize,
    sorted: Sorted,
}

/// The table in sorted order, as a check left it.
#[derive(Debug)]
enum Sorted {
    /// Not whole, or already in order.
    Nothing,
    /// The sorting permutation (simple path): slot `j` holds entry `order[j]`.
    Order(Vec<u32>),
    /// The sorted table's bytes (fast path).
    Bytes(Vec<u8>),
    /// Out of order, but the check was asked not to keep the sorted table.
    NotKept,
}

impl Checked {
    /// The table's bytes in sorted order, self-relative fields adjusted; `None` when the
    /// table is already in order or not a whole number of entries. Takes them out of the
    /// check (a second call gives `None`). An overflow is refused, as [`Table::permuted`]
    /// does (a check without errors rules it out). When the check did not keep them, they
    /// are computed again.
    pub fn take_sorted_bytes(&mut self, t: &Table<'_>) -> Result<Option<Vec<u8>>, Overflow> {
        match core::mem::replace(&mut self.sorted, Sorted::Nothing) {
            Sorted::Nothing => Ok(None),
            Sorted::Order(order) => t.permuted(&order).map(Some),
            Sorted::Bytes(b) => Ok(Some(b)),
            Sorted::NotKept => t.permuted(&table::sorted_order(&t.keys())).map(Some),
        }
    }
}

struct Ctx<'a, 'i, 'd> {
    a: &'a Analysis<'i, 'd>,
    out: Findings,
    funcs: FunctionCursor<'a, 'i, 'd>,
    starts: StartCache,
}

impl Ctx<'_, '_, '_> {
    fn addr(&self, role: &'static str, addr: u64) -> Address {
        Address {
            role,
            addr,
            symbol: self.a.symbols.describe(addr),
        }
    }

    fn push(
        &mut self,
        severity: Severity,
        rule: &'static str,
        index: Option<usize>,
        addresses: Vec<Address>,
        message: String,
    ) {
        self.out.push(Finding {
            severity,
            rule,
            index,
            addresses,
            message,
        });
    }

    fn entry_addrs(&self, e: &Entry) -> Vec<Address> {
        let mut v = vec![self.addr("insn", e.insn), self.addr("fixup", e.fixup)];
        if let Extra::Handler(h) = e.extra {
            v.push(self.addr("handler", h));
        }
        v
    }
}

/// Run every rule on the analysed file named `file`, and keep the sorted table for
/// [`crate::sort::plan`].
///
/// Self-relative tables take the fast path ([`crate::records`]): the table is read in
/// file order, sorted as compact records, and the per-entry rules walk it in sorted order
/// with memoised lookups; an entry that fails a rule is handed to the same rule functions
/// as [`check_simple`], so the findings are the same. Other tables take [`check_simple`].
/// Findings name the entries by their index in the file.
pub fn check(a: &Analysis<'_, '_>, file: &str) -> Checked {
    check_with(a, file, &records::Keep, true)
}

/// [`check`], giving the table's pages back to `pages` once read (for a file mapping, the
/// peak memory is then the sorted records, not the records plus the table), and keeping
/// the sorted table only when `keep_sorted` (to sort the file).
pub fn check_with(
    a: &Analysis<'_, '_>,
    file: &str,
    pages: &dyn records::Pages,
    keep_sorted: bool,
) -> Checked {
    let tuning = records::Tuning::default();
    run(a, file, Some((pages, tuning)), keep_sorted)
}

/// [`check`] with the fast path's work split as `tuning` says whatever the table's size:
/// for tests that compare every seam of the fast path with [`check_simple`].
#[cfg(test)]
pub fn check_tuned(a: &Analysis<'_, '_>, file: &str, tuning: records::Tuning) -> Checked {
    run(a, file, Some((&records::Keep, tuning)), true)
}

/// The straightforward implementation of [`check`]: keys, a sorting permutation, a
/// gather of the sorted table and a walk over it. Kept for tables the fast path does not
/// take, and as the reference the fast path is tested against.
#[cfg(test)]
pub fn check_simple(a: &Analysis<'_, '_>, file: &str) -> Checked {
    run(a, file, None, true)
}

fn run(
    a: &Analysis<'_, '_>,
    file: &str,
    fast: Option<(&dyn records::Pages, records::Tuning)>,
    keep_sorted: bool,
) -> Checked {
    let mut cx = Ctx {
        a,
        out: Findings::default(),
        funcs: a.symbols.function_cursor(),
        starts: StartCache::default(),
    };
    let t = &a.table;
    let mut moved = 0;
    let mut sorted_table = Sorted::Nothing;
    let mut sorted = t.is_empty();
    check_align(&mut cx);
    check_writable(&mut cx);
    check_marker_present(&mut cx);
    check_marker_value(&mut cx);
    if check_size(&mut cx) {
        let done = fast.and_then(|(pages, tuning)| {
            // The headers and the symbol table have been read: from here on only the
            // table is (and what a finding names, read again if need be). Dropping the
            // pages costs a walk over the mapping: worth it when the records are large.
            if t.len() >= records::LARGE {
                pages.release(a.image.data);
            }
            records::run(t, &a.symbols, pages, tuning, keep_sorted)
        });
        match done {
            Some(f) => {
                sorted = f.descent.is_none();
                check_marker_state(&mut cx, f.descent);
                // The fast path ran only because no field overflows when moved.
                replay(&mut cx, &f.events);
                moved = f.moved;
                sorted_table = match f.sorted {
                    Some(bytes) => Sorted::Bytes(bytes),
                    None if moved > 0 => Sorted::NotKept,
                    None => Sorted::Nothing,
                };
            }
            None => {
                let keys = t.keys();
                sorted = table::is_sorted(&keys);
                check_marker_state(&mut cx, keys.windows(2).position(|w| w[0] > w[1]));
                check_overflow(&mut cx);
                let order = table::sorted_order(&keys);
                let sorted_bytes = t.permuted_wrapping(&order);
                check_sorted_entries(&mut cx, &t.with_bytes(&sorted_bytes), &order);
                moved = order
                    .iter()
                    .enumerate()
                    .filter(|(j, &i)| *j != i as usize)
                    .count();
                if moved > 0 {
                    sorted_table = Sorted::Order(order);
                }
            }
        }
    }
    if a.instructions {
        let pages = fast.map_or(&records::Keep as &dyn records::Pages, |(p, _)| p);
        check_instructions(&mut cx, pages);
    }
    let report = Report {
        file: file.to_string(),
        layout: a.layout.name().to_string(),
        entries: t.len(),
        marker: a.marker.as_ref().map(|m| MarkerState {
            symbol: m.symbol.to_string(),
            value: m.value,
        }),
        sorted,
        errors: cx.out.count(Severity::Error),
        warnings: cx.out.count(Severity::Warning),
        notes: cx.out.count(Severity::Note),
        findings: cx.out.into_list(),
    };
    Checked {
        report,
        moved,
        sorted: sorted_table,
    }
}

/// The instruction-level rules ([`crate::insn`]).
fn check_instructions(cx: &mut Ctx<'_, '_, '_>, pages: &dyn records::Pages) {
    for f in crate::insn::check(cx.a, pages) {
        let mut addrs = cx.entry_addrs(&f.entry);
        if let Some(at) = f.instruction {
            addrs.push(cx.addr("instruction", at));
        }
        cx.push(f.severity, f.rule, Some(f.index), addrs, f.message);
    }
}

/// Hand what the fast walk flagged to the rule functions, in sorted order.
fn replay(cx: &mut Ctx<'_, '_, '_>, events: &[records::Event]) {
    let third = cx.a.table.shape.third;
    for ev in events {
        match ev {
            records::Event::Entry(i, e) => check_entry(cx, *i, e),
            records::Event::Duplicate((pi, pe), (i, e)) => {
                check_duplicate(cx, (*pi, pe), (*i, e), third)
            }
        }
    }
}

/// Per-entry rules and duplicates, over the table in sorted order.
fn check_sorted_entries(cx: &mut Ctx<'_, '_, '_>, sorted: &Table<'_>, order: &[u32]) {
    let mut prev: Option<(u64, usize, Entry)> = None;
    for (j, &i) in order.iter().enumerate() {
        let e = sorted.entry(j);
        let key = sorted.key(j);
        check_entry(cx, i as usize, &e);
        if let Some((pkey, pi, pe)) = prev {
            if pkey == key {
                check_duplicate(cx, (pi, &pe), (i as usize, &e), sorted.shape.third);
            }
        }
        prev = Some((key, i as usize, e));
    }
}

fn check_size(cx: &mut Ctx<'_, '_, '_>) -> bool {
    let t = &cx.a.table;
    if t.size_is_whole() {
        return true;
    }
    let at = cx.addr("table", t.addr);
    let msg = format!(
        "table size {:#x} is not a multiple of the {}-byte {} entry",
        t.bytes.len(),
        t.shape.size,
        t.layout
    );
    cx.push(Severity::Error, "size", None, vec![at], msg);
    false
}

fn check_align(cx: &mut Ctx<'_, '_, '_>) {
    let t = &cx.a.table;
    if !t.addr.is_multiple_of(t.shape.align as u64) {
        let at = cx.addr("table", t.addr);
        let msg = format!(
            "table address {:#x} is not {}-byte aligned",
            t.addr, t.shape.align
        );
        cx.push(Severity::Error, "align", None, vec![at], msg);
    }
}

fn check_writable(cx: &mut Ctx<'_, '_, '_>) {
    if cx.a.layout == Layout::Extable && cx.a.table_is_writable() {
        let at = cx.addr("table", cx.a.table.addr);
        cx.push(
            Severity::Warning,
            "writable-table",
            None,
            vec![at],
            "the table is in a writable segment".into(),
        );
    }
}

fn check_marker_present(cx: &mut Ctx<'_, '_, '_>) {
    if cx.a.marker.is_none() {
        let msg = format!(
            "no {} symbol: the runtime cannot tell whether the table is sorted",
            cx.a.layout.marker_symbol()
        );
        cx.push(Severity::Warning, "no-marker", None, vec![], msg);
    }
}

/// A marker other than 0 or 1 is not one the linker script or a sort wrote: most likely its
/// symbol or section points at other bytes (a header, the table), which a sort would corrupt.
fn check_marker_value(cx: &mut Ctx<'_, '_, '_>) {
    let Some(value) = cx.a.marker.as_ref().and_then(|m| m.value) else {
        return;
    };
    if value > 1 {
        let msg = format!(
            "{} is {value} ({value:#x}), neither 0 (sorted) nor 1 (sort needed): it does not hold a sort marker",
            cx.a.layout.marker_symbol()
        );
        cx.push(Severity::Error, "bad-marker-value", None, vec![], msg);
    }
}

fn check_entry(cx: &mut Ctx<'_, '_, '_>, i: usize, e: &Entry) {
    let insn_code = cx.a.symbols.code_section(e.insn).is_some();
    let fixup_code = cx.a.symbols.code_section(e.fixup).is_some();
    for (ok, rule, role, addr) in [
        (insn_code, "insn-not-code", "insn", e.insn),
        (fixup_code, "fixup-not-code", "fixup", e.fixup),
    ] {
        if !ok {
            let msg = format!(
                "{role} {addr:#x} <{}> is outside every executable section",
                cx.a.symbols.describe(addr)
            );
            let addrs = cx.entry_addrs(e);
            cx.push(Severity::Error, rule, Some(i), addrs, msg);
        }
    }
    check_third(cx, i, e);
    if insn_code && fixup_code {
        check_fixup_place(cx, i, e);
    }
}

fn check_third(cx: &mut Ctx<'_, '_, '_>, i: usize, e: &Entry) {
    match e.extra {
        Extra::Handler(h) if !cx.starts.is_function_start(&cx.a.symbols, h) => {
            let msg = format!(
                "handler {h:#x} <{}> is not the start of a function symbol",
                cx.a.symbols.describe(h)
            );
            let addrs = cx.entry_addrs(e);
            cx.push(Severity::Error, "handler-not-function", Some(i), addrs, msg);
        }
        Extra::Data { word, ty } if crate::arch::fixup_type_name(cx.a.layout, ty).is_none() => {
            let msg = format!(
                "unknown {} fixup type {ty} (data word {word:#010x}) for insn <{}>",
                cx.a.layout,
                cx.a.symbols.describe(e.insn)
            );
            let addrs = cx.entry_addrs(e);
            cx.push(Severity::Error, "unknown-type", Some(i), addrs, msg);
        }
        _ => {}
    }
}

fn check_fixup_place(cx: &mut Ctx<'_, '_, '_>, i: usize, e: &Entry) {
    if cx.a.layout != Layout::Extable {
        return;
    }
    let Some((start, end)) = cx.funcs.containing(e.insn) else {
        return;
    };
    if (start..end).contains(&e.fixup) || cx.a.symbols.in_fixup_section(e.fixup) {
        return;
    }
    // Fixup stubs merged into `.text` are covered by no function symbol.
    if cx.a.symbols.function_containing(e.fixup).is_none() {
        return;
    }
    let msg = format!(
        "fixup {:#x} <{}> is in a different function from insn {:#x} <{}>, and not in a fixup section",
        e.fixup,
        cx.a.symbols.describe(e.fixup),
        e.insn,
        cx.a.symbols.describe(e.insn)
    );
    let addrs = cx.entry_addrs(e);
    cx.push(
        Severity::Warning,
        "fixup-outside-function",
        Some(i),
        addrs,
        msg,
    );
}

fn check_overflow(cx: &mut Ctx<'_, '_, '_>) {
    if let Some(o) = cx.a.table.first_overflow() {
        let e = cx.a.table.entry(o.index);
        let insn = cx.a.symbols.describe(e.insn);
        let msg = if cx.a.table.shape.third == Third::WideHandler(o.field) {
            format!(
                "the 64-bit handler at byte {} points into the table: moved to another slot it \
                 would read 0, no handler (insn <{insn}>)",
                o.field
            )
        } else {
            format!(
                "the self-relative field at byte {} cannot move within the table without \
                 overflowing an i32 (insn <{insn}>)",
                o.field
            )
        };
        let addrs = cx.entry_addrs(&e);
        cx.push(
            Severity::Error,
            "offset-overflow",
            Some(o.index),
            addrs,
            msg,
        );
    }
}

fn check_duplicate(
    cx: &mut Ctx<'_, '_, '_>,
    (i, a): (usize, &Entry),
    (j, b): (usize, &Entry),
    third: Third,
) {
    let identical = a == b;
    let insn = format!("insn {:#x} <{}>", b.insn, cx.a.symbols.describe(b.insn));
    let (severity, rule, msg) = if identical {
        (
            Severity::Note,
            "identical-duplicate",
            format!("entry {j} is identical to entry {i} ({insn})"),
        )
    } else {
        let what = match third {
            Third::Handler(_) | Third::WideHandler(_) => "fixup or handler",
            Third::Data(_) => "fixup or data",
            Third::Nothing => "fixup",
        };
        (
            Severity::Error,
            "conflicting-duplicate",
            format!("entry {j} covers the same {insn} as entry {i} with a different {what}"),
        )
    };
    let addrs = cx.entry_addrs(b);
    cx.push(severity, rule, Some(j), addrs, msg);
}

/// `descent`: the first entry whose key is greater than the next one's.
fn check_marker_state(cx: &mut Ctx<'_, '_, '_>, descent: Option<usize>) {
    let Some(value) = cx.a.marker.as_ref().and_then(|m| m.value) else {
        return;
    };
    let Some(i) = descent else {
        return;
    };
    let (a, b) = (cx.a.table.entry(i), cx.a.table.entry(i + 1));
    let addrs = vec![cx.addr("insn", a.insn), cx.addr("insn", b.insn)];
    let order = format!(
        "entry {} (insn {:#x} <{}>) comes after entry {i} (insn {:#x} <{}>) but sorts before it",
        i + 1,
        b.insn,
        cx.a.symbols.describe(b.insn),
        a.insn,
        cx.a.symbols.describe(a.insn)
    );
    let marker = cx.a.layout.marker_symbol();
    if value == 0 {
        let msg = format!("{marker} is 0 (sorted) but the table is not sorted: {order}");
        cx.push(
            Severity::Error,
            UNSORTED_BUT_MARKED,
            Some(i + 1),
            addrs,
            msg,
        );
    } else {
        let msg = format!("not sorted yet ({marker} = {value}): {order}");
        cx.push(Severity::Note, "not-sorted-yet", Some(i + 1), addrs, msg);
    }
}
