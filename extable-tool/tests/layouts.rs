//! Every layout in every class and byte order: shuffled tables sort back to the reference
//! order, byte for byte, and Linux layouts give what Linux's sorttable algorithm gives.

mod common;

use common::elfgen::*;
use common::sorttable::{kind_for_machine, sorttable, SortKind};
use common::synth::*;
use common::*;
use extable_tool::Layout;

const CLASSES: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

fn oracle_kind(layout: Layout) -> Option<SortKind> {
    match layout {
        Layout::Extable => None,
        Layout::LinuxX86Legacy => Some(SortKind::X86Legacy),
        Layout::LinuxPowerpc
        | Layout::LinuxArm64Legacy
        | Layout::LinuxX86Pair
        | Layout::LinuxS390Pair => Some(SortKind::Relative),
        Layout::LinuxS390Handler => Some(SortKind::S390Handler),
        Layout::Absolute => Some(SortKind::Absolute),
        _ => Some(SortKind::RelativeWithData),
    }
}

fn sort_and_compare(
    layout: Layout,
    is64: bool,
    big: bool,
    n: usize,
    seed: u64,
    tweak: impl Fn(&mut Program),
) {
    let dir = tempdir();
    let specs = sorted_specs(layout, n);
    let mut reference = Program::new(layout, is64, big, specs.clone()).marker_value(0);
    tweak(&mut reference);
    let mut input = Program::new(layout, is64, big, shuffled(&specs, seed));
    tweak(&mut input);
    let (reference, input) = (reference.build(), input.build());
    assert_ne!(reference, input, "the shuffle changed nothing");
    let path = write(dir.path(), "f.elf", &input);
    let out = run(&["sort", s(&path)]);
    let what = format!("{layout} is64={is64} big={big}");
    assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
    let sorted = std::fs::read(&path).unwrap();
    assert!(
        sorted == reference,
        "{what}: sorted file differs from the reference"
    );
    if let Some(kind) = oracle_kind(layout) {
        let mut linux = input.clone();
        sorttable(&mut linux, kind).unwrap();
        assert!(sorted == linux, "{what}: differs from sorttable's result");
    }
    let check = run(&["check", s(&path), "--layout", layout.name()]);
    assert_eq!(code(&check), 0, "{what}: {}", stdout(&check));
    assert!(stdout(&check).contains(", sorted:"), "{}", stdout(&check));
}

#[test]
fn every_layout_class_and_byte_order_sorts_back_to_the_reference() {
    for &layout in Layout::ALL {
        for (is64, big) in CLASSES {
            sort_and_compare(layout, is64, big, 60, 7 + layout as u64, |_| {});
        }
    }
}

#[test]
fn detection_matches_sorttables_choice_of_machine() {
    for &layout in Layout::ALL {
        for (is64, big) in CLASSES {
            let m = machine_for(layout, is64, big);
            // Linux 6.1's sorttable knows the 6.1 layout of each machine; the other
            // generations are told apart by the entries (LoongArch's relative layout came
            // in 6.2).
            let other_generations = [
                Layout::LinuxX86Legacy,
                Layout::LinuxX86Pair,
                Layout::LinuxArm64Legacy,
                Layout::LinuxS390Handler,
                Layout::LinuxS390Pair,
                Layout::LinuxLoongarch,
            ];
            if layout.is_linux() && !other_generations.contains(&layout) {
                assert_eq!(kind_for_machine(m), oracle_kind(layout), "{layout}");
            }
            let p = Program::new(layout, is64, big, sorted_specs(layout, 8));
            let dir = tempdir();
            let path = write(dir.path(), "f", &p.build());
            let out = run(&["check", s(&path), "--format", "json"]);
            assert_eq!(code(&out), 0, "{layout}: {}", stdout(&out));
            let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(v["files"][0]["report"]["layout"], layout.name());
        }
    }
}

/// Machines whose Linux layout changed over the versions (class, byte order, layouts
/// newest first). arm64: absolute 16-byte pairs, two relative ints from 4.6, a type and data
/// word from 5.16. x86: two relative ints from 3.5, a relative handler from 4.6, a data word
/// from 5.16. s390: two relative ints, a relative 64-bit handler from 5.5, a type and data
/// word from 5.16. riscv, LoongArch and powerpc: absolute, then relative.
const GENERATIONS: &[(u16, bool, bool, &[Layout])] = &[
    (
        EM_AARCH64,
        true,
        false,
        &[
            Layout::LinuxArm64,
            Layout::LinuxArm64Legacy,
            Layout::Absolute,
        ],
    ),
    (
        EM_X86_64,
        true,
        false,
        &[
            Layout::LinuxX86,
            Layout::LinuxX86Legacy,
            Layout::LinuxX86Pair,
        ],
    ),
    (
        EM_386,
        false,
        false,
        &[
            Layout::LinuxX86,
            Layout::LinuxX86Legacy,
            Layout::LinuxX86Pair,
        ],
    ),
    (
        EM_RISCV,
        true,
        false,
        &[Layout::LinuxRiscv, Layout::Absolute],
    ),
    (
        EM_LOONGARCH,
        true,
        false,
        &[Layout::LinuxLoongarch, Layout::Absolute],
    ),
    (
        EM_PPC64,
        true,
        false,
        &[Layout::LinuxPowerpc, Layout::Absolute],
    ),
    (
        EM_PPC64,
        true,
        true,
        &[Layout::LinuxPowerpc, Layout::Absolute],
    ),
    (
        EM_PPC,
        false,
        true,
        &[Layout::LinuxPowerpc, Layout::Absolute],
    ),
];

/// Each generation of each such machine is detected from its entries, whatever the table's
/// size is a multiple of, and sorted as that version's sorttable (or, before build-time
/// sorting, the boot-time sort) does.
#[test]
fn kernels_of_each_generation_are_detected_from_their_entries() {
    for &(machine, is64, big, layouts) in GENERATIONS {
        for &layout in layouts {
            // 48 entries: 384, 576 or 768 bytes, each a multiple of 8, 12 and 16; 7
            // entries: a size that only one layout divides.
            for (n, seed) in [(48, 3), (7, 5)] {
                let what = format!("{layout} on machine {machine}, is64={is64} big={big}, {n}");
                let specs = sorted_specs(layout, n);
                let program = |specs: Vec<Spec>| Program {
                    machine,
                    ..Program::new(layout, is64, big, specs)
                };
                let reference = program(specs.clone()).marker_value(0).build();
                let input = program(shuffled(&specs, seed)).build();
                let dir = tempdir();
                let path = write(dir.path(), "vmlinux", &input);
                let out = run(&["check", s(&path), "--format", "json"]);
                assert_eq!(code(&out), 0, "{what}: {}", stdout(&out));
                let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
                assert_eq!(v["files"][0]["report"]["layout"], layout.name(), "{what}");
                let out = run(&["sort", s(&path)]);
                assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
                let sorted = std::fs::read(&path).unwrap();
                assert!(sorted == reference, "{what}: differs from the reference");
                let mut linux = input.clone();
                sorttable(&mut linux, oracle_kind(layout).unwrap()).unwrap();
                assert!(sorted == linux, "{what}: differs from sorttable's result");
            }
        }
    }
}

/// `check` of `p` fails, naming `layout` and each of `findings`.
fn check_reports(p: &Program, layout: Layout, findings: &[&str]) {
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &p.build());
    let out = run(&["check", s(&path)]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let table = format!("{} table", layout.name());
    for expected in std::iter::once(table.as_str()).chain(findings.iter().copied()) {
        assert!(
            stdout(&out).contains(expected),
            "{expected}: {}",
            stdout(&out)
        );
    }
}

/// A defect in a few entries does not hide an older generation: the table is still read
/// with its own layout, and the check names the defective entry. (30 entries of 8 bytes
/// are also 20 of 12.)
#[test]
fn a_defective_entry_does_not_change_the_generation() {
    for layout in [Layout::LinuxArm64Legacy, Layout::LinuxX86Pair] {
        let mut specs = sorted_specs(layout, 30);
        specs[5].insn = RODATA + 8;
        let p = Program::new(layout, true, false, specs);
        check_reports(&p, layout, &["entry 5: insn", "[insn-not-code]"]);
    }
}

/// A table cut short by 4 bytes keeps its generation, and the check reports the size. (29
/// x86 entries of 12 bytes and 4 bytes more are 44 whole pairs, and read as pairs the
/// relative handlers of 4.6-5.15 land in code too.)
#[test]
fn a_truncated_table_keeps_its_generation() {
    let layouts = [
        (Layout::LinuxX86Legacy, false),
        (Layout::LinuxX86, false),
        (Layout::LinuxX86Pair, false),
        (Layout::LinuxArm64Legacy, false),
        (Layout::LinuxS390Handler, true),
        (Layout::LinuxS390Pair, true),
    ];
    for (layout, big) in layouts {
        let mut p = Program::new(layout, true, big, sorted_specs(layout, 29));
        p.table_tail = vec![0; 4];
        check_reports(&p, layout, &["[size]"]);
    }
    // A 16-byte s390 entry cut to its insn and fixup: read as pairs, one more pair than
    // half the table lands in code.
    let layout = Layout::LinuxS390Handler;
    let mut p = Program::new(layout, true, true, sorted_specs(layout, 29));
    let tail = TABLE + 29 * 16;
    let insn = (TEXT + 4).wrapping_sub(tail) as u32;
    let fixup = (TEXT + 0x30).wrapping_sub(tail + 4) as u32;
    p.table_tail = [insn.to_be_bytes(), fixup.to_be_bytes(), [0; 4]].concat();
    check_reports(&p, layout, &["[size]"]);
}

/// A 5.5-5.15 s390 handler that points at the handler field of another slot would read 0,
/// "no handler", once its entry moved there (as Linux's sorttable would move it): `check`
/// reports it and `sort` refuses, the file untouched.
#[test]
fn an_s390_handler_that_would_vanish_when_moved_is_refused() {
    let layout = Layout::LinuxS390Handler;
    let mut specs = shuffled(&sorted_specs(layout, 12), 4);
    specs[0].third = ThirdSpec::Handler(TABLE + 2 * 16 + 8);
    let p = Program::new(layout, true, true, specs);
    check_reports(
        &p,
        layout,
        &["entry 0:", "[offset-overflow]", "would read 0"],
    );
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &p.build());
    let out = run(&["sort", s(&path)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), p.build(), "the file changed");
}

/// An arm64 table with a defect in every reading is read with the newest layout, whose
/// check names the defect.
#[test]
fn a_defective_arm64_table_is_checked_as_the_newest_layout() {
    let mut specs = sorted_specs(Layout::LinuxArm64, 12);
    specs[4].third = ThirdSpec::Data(0x77, 0);
    let p = Program::new(Layout::LinuxArm64, true, false, specs);
    check_reports(&p, Layout::LinuxArm64, &["[unknown-type]"]);
}

#[test]
fn extended_section_indices_and_zero_e_shnum_are_followed() {
    for layout in [Layout::Extable, Layout::LinuxX86, Layout::Absolute] {
        sort_and_compare(layout, true, false, 30, 3, |p| p.padding_sections = 0xff10);
        sort_and_compare(layout, false, true, 30, 5, |p| p.padding_sections = 0xff10);
    }
    // The files really use the extensions.
    let p = Program {
        padding_sections: 0xff10,
        ..Program::new(
            Layout::Extable,
            true,
            false,
            sorted_specs(Layout::Extable, 4),
        )
    };
    let bytes = p.build();
    assert_eq!(u16::from_le_bytes([bytes[0x3c], bytes[0x3d]]), 0, "e_shnum");
    assert_eq!(
        u16::from_le_bytes([bytes[0x3e], bytes[0x3f]]),
        0xffff,
        "e_shstrndx"
    );
}

#[test]
fn et_dyn_is_sorted_like_et_exec() {
    for layout in [Layout::Extable, Layout::LinuxArm64, Layout::LinuxPowerpc] {
        sort_and_compare(layout, true, false, 40, 11, |p| p.e_type = ET_DYN);
    }
}

#[test]
fn linux_relocations_of_the_table_are_zeroed_like_sorttable() {
    for layout in [Layout::LinuxX86, Layout::LinuxX86Legacy] {
        let specs = sorted_specs(layout, 20);
        let mut p = Program::new(layout, true, false, shuffled(&specs, 9));
        // .text, .text.fixup, __ex_table: the table is section 3.
        let mut rela = Sec::progbits(".rela__ex_table", 0, 0, vec![0x5a; 48]);
        rela.sh_type = SHT_RELA;
        rela.info = 3;
        p.extra.push(rela);
        let input = p.build();
        let dir = tempdir();
        let path = write(dir.path(), "f", &input);
        let out = run(&["sort", s(&path)]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let got = std::fs::read(&path).unwrap();
        let mut linux = input.clone();
        sorttable(&mut linux, oracle_kind(layout).unwrap()).unwrap();
        assert!(got == linux, "{layout}: differs from sorttable");
        assert!(
            !got.windows(48).any(|w| w.iter().all(|&b| b == 0x5a)),
            "relocations not zeroed"
        );
    }
}

#[test]
fn sorttables_quirk_of_zeroing_an_unrelated_relocation_section_is_refused() {
    let specs = sorted_specs(Layout::LinuxX86, 20);
    let mut p = Program::new(Layout::LinuxX86, true, false, shuffled(&specs, 9));
    let mut rela = Sec::progbits(".rela.dyn", SHF_ALLOC, 0x28000, vec![0x5a; 48]);
    rela.sh_type = SHT_RELA;
    rela.info = 0;
    p.extra_before_table.push(rela);
    let input = p.build();
    // sorttable itself would wipe .rela.dyn:
    let mut linux = input.clone();
    sorttable(&mut linux, SortKind::RelativeWithData).unwrap();
    assert!(!linux.windows(48).any(|w| w.iter().all(|&b| b == 0x5a)));
    let dir = tempdir();
    let path = write(dir.path(), "f", &input);
    let before = digest(&path);
    let out = run(&["sort", s(&path)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains(".rela.dyn"), "{}", stderr(&out));
    assert_eq!(digest(&path), before);
}

#[test]
fn sort_to_another_file_leaves_the_input_alone() {
    let specs = sorted_specs(Layout::Extable, 30);
    let input = Program::new(Layout::Extable, true, false, shuffled(&specs, 2)).build();
    let reference = Program::new(Layout::Extable, true, false, specs)
        .marker_value(0)
        .build();
    let dir = tempdir();
    let path = write(dir.path(), "in", &input);
    let out_path = dir.path().join("out");
    let before = digest(&path);
    let out = run(&["sort", s(&path), "-o", s(&out_path)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(digest(&path), before);
    assert!(std::fs::read(&out_path).unwrap() == reference);
    // Sorting a sorted, marked file in place changes nothing.
    let again = run(&["sort", s(&out_path)]);
    assert_eq!(code(&again), 0);
    assert!(stdout(&again).contains("unchanged"), "{}", stdout(&again));
}
