//! The fuzz targets' seed corpus: real linker outputs (x86-64, i386, ARM, AArch64; static and
//! PIE; sorted and shuffled tables; this project's layout and Linux's), each prefixed with the
//! byte the targets read as "detect the layout". Written by `scripts/fuzz.sh` through
//! `EXTABLE_FUZZ_SEEDS=DIR cargo test -p extable-tool --test fuzz_seeds -- --ignored`.

mod common;

use common::asm::{self, Arch};
use common::synth::shuffled;
use extable_tool::Layout;

#[test]
#[ignore = "writes the fuzz seed corpus into $EXTABLE_FUZZ_SEEDS"]
fn write_fuzz_seeds() {
    let out = std::path::PathBuf::from(
        std::env::var_os("EXTABLE_FUZZ_SEEDS").expect("EXTABLE_FUZZ_SEEDS names a directory"),
    );
    std::fs::create_dir_all(&out).unwrap();
    let detect = Layout::ALL.len() as u8;
    let cases = [
        (Arch::X86_64, Layout::Extable),
        (Arch::X86_64, Layout::LinuxX86),
        (Arch::X86_64, Layout::LinuxX86Legacy),
        (Arch::I386, Layout::LinuxX86),
        (Arch::Arm, Layout::Extable),
        (Arch::Arm, Layout::Absolute),
        (Arch::Aarch64, Layout::LinuxArm64),
    ];
    let n = 12;
    let sorted: Vec<usize> = (0..n).collect();
    let mut written = 0;
    for (arch, layout) in cases {
        if !asm::available(arch) {
            continue;
        }
        let pies: &[bool] = if arch == Arch::I386 {
            &[false]
        } else {
            &[false, true]
        };
        for &pie in pies {
            for (name, order, marker) in [
                ("sorted", sorted.clone(), 0),
                ("shuffled", shuffled(&sorted, 7), 1),
            ] {
                let dir = common::tempdir();
                let src = asm::source(arch, layout, n, &order, marker, false);
                let elf = asm::link(arch, dir.path(), &src, pie, "out");
                let mut seed = vec![detect];
                seed.extend(std::fs::read(elf).unwrap());
                let file = format!(
                    "{arch:?}-{layout}-{}-{name}",
                    if pie { "pie" } else { "static" }
                );
                std::fs::write(out.join(file), seed).unwrap();
                written += 1;
            }
        }
    }
    assert!(written > 0, "no toolchain to link seeds with");
}
