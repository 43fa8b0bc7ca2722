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
//! | `offset-overflow`       | error    | a self-relative field would overflow if moved            |
//! | `fixup-outside-function`| warning  | fixup outside the insn's function and any fixup section  |
//! | `writable-table`        | warning  | the table is in a writable segment                       |
//! | `no-marker`             | warning  | the file has no sort marker for this layout              |
//! | `identical-duplicate`   | note     | two identical entries                                    |
//! | `not-sorted-yet`        | note     | unsorted, and the marker says a sort is needed           |

use crate::analysis::Analysis;
use crate::layout::Third;
use crate::report::{Address, Finding, Findings, MarkerState, Report, Severity};
use crate::symbols::{FunctionCursor, StartCache};
use crate::table::{self, Entry, Extra, Table};

/// What a check computed besides the findings, reused by `sort`.
#[derive(Debug)]
pub struct Checked {
    /// The report.
    pub report: Report,
    /// The sorting permutation (empty if the size is not whole): slot `j` of the sorted
    /// table holds entry `order[j]`.
    pub order: Vec<u32>,
    /// The table's bytes in sorted order (empty if the size is not whole).
    pub sorted_bytes: Vec<u8>,
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

/// Run every rule on the analysed file named `file`.
///
/// The table is first put in sorted order (the gather `sort` writes), then the per-entry
/// rules walk it in that order, so that function and section lookups advance monotonically;
/// findings still name the entries by their index in the file.
pub fn check(a: &Analysis<'_, '_>, file: &str) -> Checked {
    let mut cx = Ctx {
        a,
        out: Findings::default(),
        funcs: a.symbols.function_cursor(),
        starts: StartCache::default(),
    };
    let t = &a.table;
    let mut order = Vec::new();
    let mut sorted_bytes = Vec::new();
    let mut sorted = t.is_empty();
    check_align(&mut cx);
    check_writable(&mut cx);
    check_marker_present(&mut cx);
    if check_size(&mut cx) {
        let keys = t.keys();
        sorted = table::is_sorted(&keys);
        check_marker_state(&mut cx, &keys);
        check_overflow(&mut cx);
        order = table::sorted_order(&keys);
        sorted_bytes = t.permuted_wrapping(&order);
        check_sorted_entries(&mut cx, &t.with_bytes(&sorted_bytes), &order);
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
        order,
        sorted_bytes,
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
    if cx.a.table_is_writable() {
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
    let Some((start, end)) = cx.funcs.containing(e.insn) else {
        return;
    };
    if (start..end).contains(&e.fixup) || cx.a.symbols.in_fixup_section(e.fixup) {
        return;
    }
    let msg = format!(
        "fixup {:#x} <{}> is outside the function of insn {:#x} <{}> and outside any fixup section",
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
        let msg = format!(
            "the self-relative field at byte {} cannot move within the table without overflowing an i32 \
             (insn <{}>)",
            o.field,
            cx.a.symbols.describe(e.insn)
        );
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
    let (severity, rule, what) = if identical {
        (Severity::Note, "identical-duplicate", "is identical to")
    } else {
        (
            Severity::Error,
            "conflicting-duplicate",
            "has the insn of but differs from",
        )
    };
    let third = match third {
        Third::Handler(_) => " or handler",
        Third::Data(_) => " or data",
        Third::Nothing => "",
    };
    let msg = format!(
        "entry {j} {what} entry {i} (insn {:#x} <{}>; fixup{third} {})",
        b.insn,
        cx.a.symbols.describe(b.insn),
        if identical { "equal" } else { "differ" }
    );
    let addrs = cx.entry_addrs(b);
    cx.push(severity, rule, Some(j), addrs, msg);
}

fn check_marker_state(cx: &mut Ctx<'_, '_, '_>, keys: &[u64]) {
    let Some(value) = cx.a.marker.as_ref().and_then(|m| m.value) else {
        return;
    };
    let Some(i) = keys.windows(2).position(|w| w[0] > w[1]) else {
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
            "unsorted-but-marked",
            Some(i + 1),
            addrs,
            msg,
        );
    } else {
        let msg = format!("not sorted yet ({marker} = {value}): {order}");
        cx.push(Severity::Note, "not-sorted-yet", Some(i + 1), addrs, msg);
    }
}
