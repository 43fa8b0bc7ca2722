//! Inputs the fuzz targets found, kept as regression tests (`tests/fuzz-regressions/`, named
//! after the target; the first byte picked the layout in the target). Each goes, with every
//! layout and with detection, through the reader, and through a sort in memory whose output
//! must re-check clean, be in the layout's order with the marker cleared, and hold the same
//! entries.

use std::path::Path;

use extable_tool::{check_bytes, dump_bytes, inspect_bytes, sort_bytes, Layout, Options};

fn entries_and_order(data: &[u8], layout: Layout) -> (Vec<String>, bool, bool, Option<u32>) {
    // Without the instruction rules, as for the sort: see below.
    let opts = Options {
        layout: Some(layout),
        no_instructions: true,
        ..Options::default()
    };
    let dump = dump_bytes(data, &opts, false).unwrap();
    let mut entries: Vec<String> = dump
        .entries
        .iter()
        .map(|e| {
            let handler = e.handler.as_ref().map(|h| h.addr);
            let data = e.data.as_ref().map(|d| d.word);
            format!(
                "{:x} {:x} {handler:x?} {data:x?}",
                e.insn.addr, e.fixup.addr
            )
        })
        .collect();
    entries.sort();
    let report = check_bytes(data, &opts).unwrap();
    let clean = !report.has_errors();
    (entries, report.sorted, clean, dump.marker)
}

#[test]
fn every_kept_fuzz_input_sorts_correctly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let (mut seen, mut sorts) = (0, 0);
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // The first byte picked the layout the fuzz target used (or detection); every
        // layout, and detection, is replayed, so a new layout does not change what an
        // input is tried with.
        let Some((_, elf)) = data.split_first() else {
            continue;
        };
        seen += 1;
        for layout in Layout::ALL.iter().copied().map(Some).chain([None]) {
            sorts += usize::from(replay(&path, elf, layout));
        }
    }
    assert!(seen > 0, "no inputs in {}", dir.display());
    assert!(
        sorts > 0,
        "no kept input sorts: the properties went untested"
    );
}

/// Run `elf` through the reader with `layout` (detection when `None`) and, when it sorts,
/// hold the sort's properties. Returns whether it sorted.
fn replay(path: &Path, elf: &[u8], layout: Option<Layout>) -> bool {
    let opts = Options {
        layout,
        ..Options::default()
    };
    let _ = inspect_bytes(elf, &opts);
    // The instruction rules only refuse more inputs; the write's properties are those
    // of every sort the other rules allow.
    let sort_opts = Options {
        no_instructions: true,
        ..opts
    };
    let Ok((sorted, report)) = sort_bytes(elf, &sort_opts) else {
        return false;
    };
    let layout = layout.unwrap_or_else(|| report.layout.parse().unwrap());
    let (before, _, _, _) = entries_and_order(elf, layout);
    let (after, in_order, clean, marker) = entries_and_order(&sorted, layout);
    let name = format!("{} ({layout})", path.display());
    assert!(clean, "{name}: the sorted output does not check clean");
    assert!(in_order, "{name}: not in the layout's order");
    assert_eq!(marker, Some(0), "{name}: marker");
    assert_eq!(before, after, "{name}: the entries changed");
    true
}
