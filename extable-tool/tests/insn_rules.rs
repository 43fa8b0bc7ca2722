//! Instruction-level rules on machines without a cross toolchain here (riscv, s390,
//! powerpc, MIPS), on synthetic files whose code bytes are real encodings.

mod common;

use common::elfgen::*;
use common::synth::*;
use common::*;
use extable_tool::Layout;
use serde_json::Value;

/// `layout`'s 12 good entries; entry 0's insn moved to `f0 + insn_off`; `.text` starting
/// with `code` at f0.
fn program(layout: Layout, is64: bool, big: bool, insn_off: u64, code: &[u8]) -> Vec<u8> {
    let mut specs = sorted_specs(layout, 12);
    specs[0].insn = TEXT + insn_off;
    let p = Program::new(layout, is64, big, specs);
    let mut e = p.elf();
    let text = e.sections.iter_mut().find(|s| s.name == ".text").unwrap();
    text.data[..code.len()].copy_from_slice(code);
    e.build()
}

fn rules(bytes: &[u8]) -> Vec<(String, Value)> {
    let dir = tempdir();
    let f = write(dir.path(), "f", bytes);
    let out = run(&["check", "--format", "json", s(&f)]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["files"][0]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["index"].clone()))
        .collect()
}

fn has(bytes: &[u8], rule: &str) -> bool {
    rules(bytes).iter().any(|(r, i)| r == rule && *i == 0)
}

#[test]
fn riscv_compressed_and_full_instructions() {
    // addi x0, x0, 0 (4 bytes), then c.nop (2 bytes), c.nop.
    let code = [0x13, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00];
    let at = |off| program(Layout::LinuxRiscv, true, false, off, &code);
    assert!(has(&at(2), "insn-mid-instruction"));
    for off in [0, 4, 6] {
        assert!(rules(&at(off)).is_empty(), "{off}: {:?}", rules(&at(off)));
    }
    assert!(has(&at(5), "insn-misaligned"));
}

#[test]
fn s390_two_four_and_six_byte_instructions() {
    // lg %r1,0(%r2) (6 bytes, E3...), br %r14 (2 bytes, 07FE), l %r1,0(%r2) (4 bytes, 58...).
    let code = [
        0xe3, 0x10, 0x20, 0x00, 0x00, 0x04, 0x07, 0xfe, 0x58, 0x10, 0x20, 0x00,
    ];
    let at = |off| program(Layout::LinuxS390, true, true, off, &code);
    for off in [2, 4, 10] {
        assert!(has(&at(off), "insn-mid-instruction"), "{off}");
    }
    for off in [0, 6] {
        assert!(rules(&at(off)).is_empty(), "{off}: {:?}", rules(&at(off)));
    }
}

#[test]
fn fixed_width_machines_need_aligned_insn_and_fixup() {
    for (layout, is64, big) in [
        (Layout::LinuxPowerpc, true, false),
        (Layout::LinuxPowerpc, false, true),
        (Layout::Absolute, true, false), // MIPS
        (Layout::LinuxArm64, true, false),
    ] {
        let what = format!("{layout} is64={is64} big={big}");
        assert!(
            rules(&program(layout, is64, big, 4, &[])).is_empty(),
            "{what}"
        );
        assert!(
            has(&program(layout, is64, big, 2, &[]), "insn-misaligned"),
            "{what}"
        );
        let mut specs = sorted_specs(layout, 12);
        specs[1].fixup += 2;
        let bytes = Program::new(layout, is64, big, specs).build();
        assert!(
            rules(&bytes)
                .iter()
                .any(|(r, i)| r == "fixup-misaligned" && *i == 1),
            "{what}"
        );
    }
}

#[test]
fn code_without_file_bytes_is_not_judged() {
    let mut specs = sorted_specs(Layout::LinuxX86, 12);
    specs[0].insn = TEXT + 1; // inside the 2-byte `add [rax], al` of zero bytes
    let p = Program::new(Layout::LinuxX86, true, false, specs);
    assert!(has(&p.build(), "insn-mid-instruction"));
    let mut e = p.elf();
    let text = e.sections.iter_mut().find(|s| s.name == ".text").unwrap();
    text.sh_type = SHT_NOBITS;
    text.nobits_size = text.data.len() as u64;
    text.data.clear();
    assert!(!has(&e.build(), "insn-mid-instruction"));
}
