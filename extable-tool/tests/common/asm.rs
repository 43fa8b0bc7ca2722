//! Assembly sources with a table in a chosen order, for the real assemblers and linkers.

#![allow(dead_code)]

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use extable_tool::Layout;

/// An architecture we can assemble and link here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    I386,
    Arm,
    Aarch64,
}

/// Assembly for `n` functions with one entry each, the table emitted in `order`.
/// `retain` adds the GNU retain flag so `--gc-sections` keeps the table and the marker.
pub fn source(
    arch: Arch,
    layout: Layout,
    n: usize,
    order: &[usize],
    marker: u32,
    retain: bool,
) -> String {
    let r = if retain { "R" } else { "" };
    let mut s = String::new();
    if arch == Arch::Arm {
        s += ".syntax unified\n.arm\n";
    }
    s += ".text\n.globl _start\n.type _start, %function\n_start:\n  nop\n  nop\n.size _start, .-_start\n";
    for k in 0..n {
        writeln!(s, ".globl f{k}\n.type f{k}, %function\nf{k}:\n  nop\n.Linsn{k}:\n  nop\n  nop\n.Lfix{k}:\n  nop\n.size f{k}, .-f{k}").unwrap();
    }
    s += ".globl handler0\n.type handler0, %function\nhandler0:\n  nop\n  nop\n.size handler0, .-handler0\n";
    writeln!(s, ".section __ex_table,\"a{r}\"\n.balign 4").unwrap();
    for &k in order {
        match layout {
            Layout::Absolute => writeln!(s, ".long .Linsn{k}\n.long .Lfix{k}").unwrap(),
            Layout::Extable | Layout::LinuxX86Legacy => writeln!(
                s,
                ".long .Linsn{k} - .\n.long .Lfix{k} - .\n.long handler0 - ."
            )
            .unwrap(),
            Layout::LinuxX86 => writeln!(
                s,
                ".long .Linsn{k} - .\n.long .Lfix{k} - .\n.long {}",
                1 + k % 3
            )
            .unwrap(),
            _ => writeln!(
                s,
                ".long .Linsn{k} - .\n.long .Lfix{k} - .\n.short {}\n.short {}",
                1 + k % 2,
                k % 32
            )
            .unwrap(),
        }
    }
    let name = if layout == Layout::Extable {
        "extable_main_sort_needed"
    } else {
        "main_extable_sort_needed"
    };
    writeln!(
        s,
        ".section .data.marker,\"aw{r}\"\n.balign 4\n.globl {name}\n.type {name}, %object\n.size {name}, 4\n{name}:\n.long {marker}"
    )
    .unwrap();
    s
}

/// The compiler driver or assembler+linker for `arch`, if installed.
pub fn available(arch: Arch) -> bool {
    let cmd = match arch {
        Arch::X86_64 | Arch::I386 => "gcc",
        Arch::Arm => "arm-linux-gnueabihf-gcc",
        Arch::Aarch64 => "aarch64-linux-gnu-gcc",
    };
    super::have(cmd)
}

/// Assemble and link `src` (written to `dir/x.s`) into `dir/out`; `pie` makes ET_DYN.
pub fn link(arch: Arch, dir: &Path, src: &str, pie: bool, out: &str) -> PathBuf {
    let s_path = dir.join("x.s");
    std::fs::write(&s_path, src).unwrap();
    let out_path = dir.join(out);
    let status = match arch {
        Arch::I386 => {
            let obj = dir.join("x.o");
            let ok = Command::new("as")
                .args(["--32", "-g", "-o"])
                .arg(&obj)
                .arg(&s_path)
                .current_dir(dir)
                .status()
                .unwrap();
            assert!(ok.success());
            Command::new("ld")
                .args(["-m", "elf_i386", "--build-id=none", "-o"])
                .arg(&out_path)
                .arg(&obj)
                .status()
                .unwrap()
        }
        _ => {
            let cc = match arch {
                Arch::Arm => "arm-linux-gnueabihf-gcc",
                Arch::Aarch64 => "aarch64-linux-gnu-gcc",
                _ => "gcc",
            };
            // Assemble to a fixed object name: a temporary one would end up in .strtab.
            let ok = Command::new(cc)
                .args(["-g", "-c", "-o", "x.o", "x.s"])
                .current_dir(dir)
                .status()
                .unwrap();
            assert!(ok.success());
            let mut c = Command::new(cc);
            c.args(["-g", "-nostdlib", "-Wl,--build-id=none"]);
            if pie {
                c.args(["-pie", "-Wl,--no-dynamic-linker"]);
            } else {
                c.args(["-static", "-no-pie"]);
            }
            c.arg("-o")
                .arg(&out_path)
                .arg("x.o")
                .current_dir(dir)
                .status()
                .unwrap()
        }
    };
    assert!(status.success(), "link failed for {arch:?}");
    out_path
}
