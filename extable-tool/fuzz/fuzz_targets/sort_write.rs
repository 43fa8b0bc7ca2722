//! Fuzz planning and writing a sort: sort the input in memory; when the sort is accepted,
//! the output must check clean (no errors, marker 0, sorted) and hold the same multiset of
//! entries as the input. Any panic or violated property is a bug.
#![no_main]

use extable_tool::analysis::Analysis;
use extable_tool::elf::Image;
use extable_tool::table::{self, Entry};
use extable_tool::{check, sort_bytes, Layout, Options};
use libfuzzer_sys::fuzz_target;

/// What a sort is checked against: the entries of a table (in table order), whether their
/// sort keys (the layout's order) ascend, the check report and the marker value.
struct Seen {
    entries: Vec<Entry>,
    sorted: bool,
    report: extable_tool::Report,
    marker: Option<u32>,
}

fn seen(data: &[u8], layout: Layout) -> Seen {
    let image = Image::parse(data).expect("the file parses");
    let mut a = Analysis::new(&image, Some(layout)).expect("the file analyses");
    a.instructions = false; // as for the sort below
    Seen {
        entries: (0..a.table.len()).map(|i| a.table.entry(i)).collect(),
        sorted: table::is_sorted(&a.table.keys()),
        report: check::check(&a, "<sorted>").report,
        marker: a.marker.as_ref().and_then(|m| m.value),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let layouts = extable_tool::layout::ALL_LAYOUTS;
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
    let key = |e: &Entry| (e.insn, e.fixup, format!("{:?}", e.extra));
    let (mut was, mut is) = (before.entries, after.entries);
    was.sort_by_key(key);
    is.sort_by_key(key);
    assert_eq!(was, is, "the entries changed");
});
