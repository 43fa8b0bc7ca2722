//! Files from the real assemblers and linkers (x86_64 and i386 with gcc/as/ld, 32-bit ARM
//! and AArch64 with the cross gcc): shuffled tables sort back to the reference link, which
//! emitted the same entries in sorted order; Linux layouts also match the sorttable oracle.

mod common;

use common::asm::{self, Arch};
use common::sorttable::{sorttable, SortKind};
use common::synth::shuffled;
use common::*;
use extable_tool::Layout;

const N: usize = 64;

fn roundtrip(arch: Arch, layout: Layout, pie: bool, oracle: Option<SortKind>) {
    if !asm::available(arch) {
        eprintln!("skipping {arch:?}: toolchain not installed");
        return;
    }
    let dir = tempdir();
    let sorted: Vec<usize> = (0..N).collect();
    let order = shuffled(&sorted, 17);
    let reference = asm::link(
        arch,
        dir.path(),
        &asm::source(arch, layout, N, &sorted, 0, false),
        pie,
        "ref",
    );
    let input = asm::link(
        arch,
        dir.path(),
        &asm::source(arch, layout, N, &order, 1, false),
        pie,
        "in",
    );
    let original = std::fs::read(&input).unwrap();
    let what = format!("{arch:?} {layout} pie={pie}");
    // Before sorting: an unsorted table with the marker set is clean.
    let check = run(&["check", s(&input)]);
    assert_eq!(
        code(&check),
        0,
        "{what}: {}{}",
        stdout(&check),
        stderr(&check)
    );
    let out = run(&["sort", s(&input)]);
    assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
    let got = std::fs::read(&input).unwrap();
    assert!(
        got == std::fs::read(&reference).unwrap(),
        "{what}: differs from the reference link"
    );
    if let Some(kind) = oracle {
        let mut linux = original.clone();
        sorttable(&mut linux, kind).unwrap();
        assert!(got == linux, "{what}: differs from sorttable");
    }
}

#[test]
fn x86_64_exec_and_dyn() {
    roundtrip(Arch::X86_64, Layout::Extable, false, None);
    roundtrip(Arch::X86_64, Layout::Extable, true, None);
    roundtrip(
        Arch::X86_64,
        Layout::LinuxX86,
        false,
        Some(SortKind::RelativeWithData),
    );
    roundtrip(
        Arch::X86_64,
        Layout::LinuxX86,
        true,
        Some(SortKind::RelativeWithData),
    );
    roundtrip(
        Arch::X86_64,
        Layout::LinuxX86Legacy,
        false,
        Some(SortKind::X86Legacy),
    );
}

#[test]
fn i386() {
    roundtrip(Arch::I386, Layout::Extable, false, None);
    roundtrip(
        Arch::I386,
        Layout::LinuxX86,
        false,
        Some(SortKind::RelativeWithData),
    );
}

#[test]
fn arm32() {
    roundtrip(Arch::Arm, Layout::Extable, false, None);
    roundtrip(Arch::Arm, Layout::Absolute, false, Some(SortKind::Absolute));
}

#[test]
fn aarch64() {
    roundtrip(Arch::Aarch64, Layout::Extable, false, None);
    roundtrip(
        Arch::Aarch64,
        Layout::LinuxArm64,
        false,
        Some(SortKind::RelativeWithData),
    );
}

#[test]
fn dump_resolves_symbols_and_the_same_lines_as_binutils_addr2line() {
    if !asm::available(Arch::X86_64) || !have("addr2line") {
        return;
    }
    let dir = tempdir();
    let order: Vec<usize> = (0..8).rev().collect();
    let f = asm::link(
        Arch::X86_64,
        dir.path(),
        &asm::source(Arch::X86_64, Layout::Extable, 8, &order, 1, false),
        false,
        "a",
    );
    let out = run(&["dump", s(&f), "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let entries = v["files"][0]["dump"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 8);
    for (i, e) in entries.iter().enumerate() {
        let k = order[i];
        assert_eq!(e["insn"]["symbol"], format!("f{k}+0x1"));
        assert_eq!(e["fixup"]["symbol"], format!("f{k}+0x3"));
        assert_eq!(e["handler"]["symbol"], "handler0");
        let addr = e["insn"]["addr"].as_str().unwrap();
        assert!(addr.starts_with("0x"), "{addr}");
        let a2l = std::process::Command::new("addr2line")
            .arg("-e")
            .arg(&f)
            .arg(addr)
            .output()
            .unwrap();
        let want = String::from_utf8_lossy(&a2l.stdout).trim().to_string();
        let got = e["insn"]["line"].as_str().unwrap();
        let base = |l: &str| l.rsplit('/').next().unwrap().to_string();
        assert!(base(got).starts_with("x.s:"), "{got}");
        assert_eq!(base(got), base(&want), "{got} vs addr2line's {want}");
    }
    let text = stdout(&run(&["dump", s(&f)]));
    assert!(
        text.contains("insn 0x") && text.contains("<f7+0x1>") && text.contains("x.s:"),
        "{text}"
    );
}
