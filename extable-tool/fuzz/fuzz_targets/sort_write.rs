//! Fuzz planning and writing a sort: sort the input in memory; when the sort is accepted,
//! the output must check clean (no errors, marker 0, sorted) and hold the same multiset of
//! entries as the input. Any panic or violated property is a bug.
#![no_main]

use extable_tool::analysis::Analysis;
use extable_tool::elf::Image;
use extable_tool::table::Entry;
use extable_tool::{check, sort_bytes, Layout, Options};
use libfuzzer_sys::fuzz_target;

/// The entries of `data`'s table, in table order, and the check report.
fn entries(data: &[u8], layout: Layout) -> (Vec<Entry>, extable_tool::Report, Option<u32>) {
    let image = Image::parse(data).expect("the sorted output parses");
    let a = Analysis::new(&image, Some(layout)).expect("the sorted output analyses");
    let report = check::check(&a, "<sorted>").report;
    let marker = a.marker.as_ref().and_then(|m| m.value);
    let entries = (0..a.table.len()).map(|i| a.table.entry(i)).collect();
    (entries, report, marker)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let layouts = extable_tool::layout::ALL_LAYOUTS;
    let layout: Option<Layout> = layouts.get(pick as usize % (layouts.len() + 1)).copied();
    let Ok((sorted, report)) = sort_bytes(file, &Options { layout }) else {
        return;
    };
    let layout = layout.unwrap_or_else(|| report.layout.parse().expect("a layout name"));
    assert_eq!(sorted.len(), file.len());
    let (mut before, _, _) = entries(file, layout);
    let (mut after, recheck, marker) = entries(&sorted, layout);
    assert!(!recheck.has_errors(), "{:?}", recheck.lines());
    assert_eq!(marker, Some(0));
    let keys: Vec<u64> = after.iter().map(|e| e.insn).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "not sorted");
    let key = |e: &Entry| (e.insn, e.fixup, format!("{:?}", e.extra));
    before.sort_by_key(key);
    after.sort_by_key(key);
    assert_eq!(before, after, "the entries changed");
});
