//! Fuzz planning and writing a sort: sort the input in memory; when the sort is accepted,
//! the output must check clean (no errors, marker 0, sorted) and hold the same multiset of
//! entries as the input. Any panic or violated property is a bug.
#![no_main]

use extable_tool::{check_bytes, dump_bytes, sort_bytes, Layout, Options};
use libfuzzer_sys::fuzz_target;

/// An entry's addresses: instruction, fixup, handler, and the data word.
type Entry = (u64, u64, Option<u64>, Option<u32>);

/// What a sort is checked against: the entries of a table (in table order), whether they
/// are in the layout's order, the check report and the marker value.
struct Seen {
    entries: Vec<Entry>,
    sorted: bool,
    report: extable_tool::Report,
    marker: Option<u32>,
}

fn seen(data: &[u8], layout: Layout) -> Seen {
    // Without the instruction rules, as for the sort below.
    let opts = Options {
        layout: Some(layout),
        no_instructions: true,
        ..Options::default()
    };
    let dump = dump_bytes(data, &opts, false).expect("the file analyses");
    let report = check_bytes(data, &opts).expect("the file analyses");
    Seen {
        entries: dump
            .entries
            .iter()
            .map(|e| {
                let handler = e.handler.as_ref().map(|h| h.addr);
                (
                    e.insn.addr,
                    e.fixup.addr,
                    handler,
                    e.data.as_ref().map(|d| d.word),
                )
            })
            .collect(),
        sorted: report.sorted,
        report,
        marker: dump.marker,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let layouts = Layout::ALL;
    let layout: Option<Layout> = layouts.get(pick as usize % (layouts.len() + 1)).copied();
    let Ok((sorted, report)) = sort_bytes(
        file,
        // The instruction rules only refuse more inputs (the reader target runs them).
        &Options {
            layout,
            no_instructions: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    let layout = layout.unwrap_or_else(|| report.layout.parse().expect("a layout name"));
    assert_eq!(sorted.len(), file.len());
    let before = seen(file, layout);
    let after = seen(&sorted, layout);
    assert!(!after.report.has_errors(), "{:?}", after.report.lines());
    assert_eq!(after.marker, Some(0));
    assert!(after.sorted, "not sorted");
    let (mut was, mut is) = (before.entries, after.entries);
    was.sort_unstable();
    is.sort_unstable();
    assert_eq!(was, is, "the entries changed");
});
