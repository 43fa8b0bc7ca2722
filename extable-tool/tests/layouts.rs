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
        Layout::LinuxPowerpc | Layout::LinuxArm64Legacy => Some(SortKind::Relative),
        Layout::Absolute => Some(SortKind::Absolute),
        _ => Some(SortKind::RelativeWithData),
    }
}

/// Whether the layout is detected without --layout for its natural machine.
fn detected(layout: Layout) -> bool {
    layout != Layout::LinuxLoongarch
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
    let mut args = vec!["sort", s(&path)];
    if !detected(layout) {
        args.extend(["--layout", layout.name()]);
    }
    let out = run(&args);
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
            // Linux 6.1's sorttable knows the newest layout of each machine; the older
            // ones are told apart by the entries.
            let older = [Layout::LinuxX86Legacy, Layout::LinuxArm64Legacy];
            if layout.is_linux() && detected(layout) && !older.contains(&layout) {
                assert_eq!(kind_for_machine(m), oracle_kind(layout), "{layout}");
            }
            let p = Program::new(layout, is64, big, sorted_specs(layout, 8));
            let dir = tempdir();
            let path = write(dir.path(), "f", &p.build());
            let out = run(&["check", s(&path), "--format", "json"]);
            if detected(layout) {
                assert_eq!(code(&out), 0, "{layout}: {}", stdout(&out));
                let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
                assert_eq!(v["files"][0]["report"]["layout"], layout.name());
            } else {
                assert_eq!(code(&out), 1);
                assert!(stdout(&out).contains("LoongArch"), "{}", stdout(&out));
            }
        }
    }
}

/// arm64 changed layouts twice (absolute 16-byte pairs, then two relative ints from 4.6,
/// then a type and data word from 5.16): each is detected from its entries, whatever the
/// table's size is a multiple of, and sorted as that version's sorttable does.
#[test]
fn arm64_kernels_of_each_generation_are_detected_from_their_entries() {
    for layout in [
        Layout::LinuxArm64,
        Layout::LinuxArm64Legacy,
        Layout::Absolute,
    ] {
        // 48 entries: 384, 576 or 768 bytes, each a multiple of both 8 and 12 or 16.
        for (n, seed) in [(48, 3), (7, 5)] {
            let specs = sorted_specs(layout, n);
            let arm64 = |specs: Vec<Spec>| Program {
                machine: EM_AARCH64,
                ..Program::new(layout, true, false, specs)
            };
            let reference = arm64(specs.clone()).marker_value(0).build();
            let input = arm64(shuffled(&specs, seed)).build();
            let dir = tempdir();
            let path = write(dir.path(), "vmlinux", &input);
            let out = run(&["check", s(&path), "--format", "json"]);
            assert_eq!(code(&out), 0, "{layout}: {}", stdout(&out));
            let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(v["files"][0]["report"]["layout"], layout.name(), "{n}");
            let out = run(&["sort", s(&path)]);
            assert_eq!(code(&out), 0, "{layout}: {}", stderr(&out));
            let sorted = std::fs::read(&path).unwrap();
            assert!(sorted == reference, "{layout}: differs from the reference");
            let mut linux = input.clone();
            sorttable(&mut linux, oracle_kind(layout).unwrap()).unwrap();
            assert!(sorted == linux, "{layout}: differs from sorttable's result");
        }
    }
}

/// A defect in a few entries does not hide an older arm64 generation: the table is still
/// read with its own layout, and the check names the defective entry.
#[test]
fn a_defective_entry_does_not_change_the_arm64_generation() {
    let mut specs = sorted_specs(Layout::LinuxArm64Legacy, 30);
    specs[5].insn = RODATA + 8;
    let p = Program::new(Layout::LinuxArm64Legacy, true, false, specs);
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &p.build());
    let out = run(&["check", s(&path)]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("linux-arm64-4.6 table"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("entry 5: insn"), "{}", stdout(&out));
    assert!(stdout(&out).contains("[insn-not-code]"), "{}", stdout(&out));
}

/// An arm64 table with a defect in every reading is read with the newest layout, whose
/// check names the defect.
#[test]
fn a_defective_arm64_table_is_checked_as_the_newest_layout() {
    let mut specs = sorted_specs(Layout::LinuxArm64, 12);
    specs[4].third = ThirdSpec::Data(0x77, 0);
    let p = Program::new(Layout::LinuxArm64, true, false, specs);
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &p.build());
    let out = run(&["check", s(&path)]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("linux-arm64 table"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("[unknown-type]"), "{}", stdout(&out));
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
