//! The JSON output of every command and status validates against the published schema
//! (`schema/extable-tool-1.schema.json`), with Python's `jsonschema` (draft 2020-12).

mod common;

use std::path::Path;
use std::process::Command;

use common::asm::{self, Arch};
use common::synth::*;
use common::*;
use extable_tool::Layout;

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/schema/extable-tool-1.schema.json"
);

const VALIDATE: &str = "
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
for path in sys.argv[2:]:
    jsonschema.Draft202012Validator(schema).validate(json.load(open(path)))
";

/// A Python with `jsonschema`: the one on `PATH`, or Debian's (`python3-jsonschema`).
fn python_with_jsonschema() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import jsonschema"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Run `args` and keep its stdout in `dir/name.json`; returns the document's statuses.
fn save(dir: &Path, name: &str, args: &[&str]) -> Vec<String> {
    let out = run(args);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, &out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_command_and_status_matches_the_schema() {
    let Some(python) = python_with_jsonschema() else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let ours = |specs| Program::new(Layout::Extable, true, false, specs);
    let good = write(
        d,
        "good",
        &ours(sorted_specs(Layout::Extable, 12))
            .marker_value(0)
            .build(),
    );
    let unsorted = write(
        d,
        "unsorted",
        &ours(shuffled(&sorted_specs(Layout::Extable, 12), 3)).build(),
    );
    let mut specs = sorted_specs(Layout::Extable, 12);
    specs[1].fixup = TEXT + 9 * FUNC_SIZE + 0x10; // a warning
    specs[6] = specs[5]; // a note
    let warned = write(d, "warned", &ours(specs).build());
    let mut specs = sorted_specs(Layout::Extable, 12);
    specs[5].insn = RODATA + 8; // an error
    let bad = write(d, "bad", &ours(specs).build());
    let mut specs = sorted_specs(Layout::LinuxX86, 12);
    specs[0].insn = TEXT + 1; // inside an instruction: the "instruction" address role
    let x86 = write(
        d,
        "x86",
        &Program::new(Layout::LinuxX86, true, false, specs).build(),
    );
    let arm64 = write(
        d,
        "arm64",
        &Program::new(
            Layout::LinuxArm64,
            true,
            false,
            sorted_specs(Layout::LinuxArm64, 3),
        )
        .build(),
    );
    let missing = d.join("missing");
    let not_elf = write(d, "not-elf", b"hello");
    let mut p = ours(sorted_specs(Layout::Extable, 4));
    p.marker = None;
    let no_marker = write(d, "no-marker", &p.build());

    let mut statuses = Vec::new();
    let files = [
        &good, &warned, &bad, &x86, &arm64, &missing, &not_elf, &no_marker,
    ];
    let names: Vec<&str> = files.iter().map(|f| s(f)).collect();
    let mut args = vec!["check", "--format", "json"];
    args.extend(&names);
    statuses.extend(save(d, "check", &args));
    let mut args = vec!["dump", "--format", "json"];
    args.extend(&names);
    statuses.extend(save(d, "dump", &args));
    statuses.extend(save(
        d,
        "sort",
        &[
            "sort",
            "--format",
            "json",
            s(&good),
            s(&unsorted),
            s(&bad),
            s(&missing),
        ],
    ));
    if asm::available(Arch::X86_64) {
        // DWARF lines and a handler.
        let f = asm::link(
            Arch::X86_64,
            d,
            &asm::source(Arch::X86_64, Layout::Extable, 4, &[0, 1, 2, 3], 0, false),
            false,
            "linked",
        );
        statuses.extend(save(d, "dump-lines", &["dump", "--format", "json", s(&f)]));
    }
    statuses.sort();
    statuses.dedup();
    for want in [
        "clean",
        "warnings",
        "errors",
        "sorted",
        "unchanged",
        "listed",
        "refused",
        "unreadable",
    ] {
        assert!(
            statuses.iter().any(|s| s == want),
            "{want} not covered: {statuses:?}"
        );
    }

    let docs: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json").then(|| p.display().to_string())
        })
        .collect();
    let out = Command::new(python)
        .args(["-c", VALIDATE, SCHEMA])
        .args(&docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
