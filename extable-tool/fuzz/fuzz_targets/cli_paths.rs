//! Fuzz the command line's file and output paths through the library it calls: the input is
//! written to a file and sorted in place, atomically and into a new file, checked and
//! dumped, and every report is rendered as text and JSON. A refused or failed sort must
//! leave its file byte-identical; an accepted one must re-check clean. Any panic is a bug.
#![no_main]

use std::path::Path;

use extable_tool::{check_file, dump_file, sort_file_to, Layout, Options, SortTo};
use libfuzzer_sys::fuzz_target;

fn render(report: &extable_tool::Report) {
    let _ = report.lines();
    let _ = report.summary();
    let _ = serde_json::to_string_pretty(report);
}

fn sort_one(input: &Path, to: SortTo<'_>, opts: &Options, data: &[u8]) {
    let written = match to {
        SortTo::NewFile(out) => out.to_path_buf(),
        // In place, a replacing copy, or a dry run: the input is what to check.
        _ => input.to_path_buf(),
    };
    match sort_file_to(input, to, opts) {
        Ok(outcome) => {
            render(&outcome.report);
            let again = check_file(&written, opts).expect("the sorted file reads");
            assert!(!again.has_errors(), "{:?}", again.lines());
        }
        Err(e) => {
            let _ = e.to_string();
            if let Some(r) = &e.report {
                render(r);
            }
            assert!(
                std::fs::read(input).expect("the input stays") == data,
                "a failed sort changed its input"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let layouts = Layout::ALL;
    let layout: Option<Layout> = layouts.get(pick as usize % (layouts.len() + 1)).copied();
    let opts = Options {
        layout,
        ..Options::default()
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("in.elf");
    let out = dir.path().join("out.elf");
    for to in [SortTo::NewFile(&out), SortTo::Replace, SortTo::InPlace] {
        std::fs::write(&input, file).expect("write the input");
        sort_one(&input, to, &opts, file);
    }
    std::fs::write(&input, file).expect("write the input");
    if let Ok(r) = check_file(&input, &opts) {
        render(&r);
    }
    if let Ok(d) = dump_file(&input, &opts, pick & 1 == 0) {
        let _ = d.lines();
        let _ = serde_json::to_string_pretty(&d);
    }
});
