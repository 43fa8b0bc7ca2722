//! The linker wrapper: rustc links through `extable-tool` (as `-C linker`) with rust-lld for
//! x86_64-unknown-none and armv7a-none-eabi, and the output comes out sorted and checked;
//! the explicit `extable-tool link -- LINKER ARGS...` form; failures propagate.

mod common;

use std::path::Path;
use std::process::Command;

use common::asm::{self, Arch};
use common::synth::shuffled;
use common::*;
use extable_tool::Layout;

const N: usize = 40;

fn rustc_available(target: &str) -> bool {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output();
    match out {
        Ok(o) if o.status.success() => Path::new(String::from_utf8_lossy(&o.stdout).trim())
            .join("..")
            .exists(),
        _ => false,
    }
}

/// Build a no_std program whose global_asm holds the table in `order`.
fn rustc_build(
    dir: &Path,
    target: &str,
    arch: Arch,
    order: &[usize],
    marker: u32,
    linker: Option<&str>,
    out: &str,
) -> std::process::Output {
    let asm_src = asm::source(arch, Layout::Extable, N, order, marker, true);
    std::fs::write(dir.join("x.s"), asm_src).unwrap();
    let opts = if arch == Arch::X86_64 {
        ", options(att_syntax)"
    } else {
        ", options(raw)"
    };
    let rs = format!(
        "#![no_std]\n#![no_main]\n#[panic_handler]\nfn panic(_: &core::panic::PanicInfo) -> ! {{ loop {{}} }}\ncore::arch::global_asm!(include_str!(\"x.s\"){opts});\n"
    );
    std::fs::write(dir.join("k.rs"), rs).unwrap();
    let mut c = Command::new("rustc");
    c.args([
        "--edition",
        "2021",
        "--crate-type",
        "bin",
        "--crate-name",
        "k",
        "--target",
        target,
        "-C",
        "panic=abort",
        "-C",
        "opt-level=1",
    ]);
    if let Some(l) = linker {
        c.arg("-C").arg(format!("linker={l}"));
    }
    c.arg("-o")
        .arg(dir.join(out))
        .arg(dir.join("k.rs"))
        .current_dir(dir);
    c.output().unwrap()
}

fn rustc_links_through_the_wrapper(target: &str, arch: Arch) {
    if !rustc_available(target) {
        eprintln!("skipping: target {target} not installed");
        return;
    }
    let tool = env!("CARGO_BIN_EXE_extable-tool");
    let dir = tempdir();
    let sorted: Vec<usize> = (0..N).collect();
    let reference = rustc_build(dir.path(), target, arch, &sorted, 0, None, "ref");
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let plain = rustc_build(
        dir.path(),
        target,
        arch,
        &shuffled(&sorted, 23),
        1,
        None,
        "plain",
    );
    assert!(plain.status.success());
    let wrapped = rustc_build(
        dir.path(),
        target,
        arch,
        &shuffled(&sorted, 23),
        1,
        Some(tool),
        "wrapped",
    );
    assert!(
        wrapped.status.success(),
        "{}",
        String::from_utf8_lossy(&wrapped.stderr)
    );
    let (r, p, w) = (
        dir.path().join("ref"),
        dir.path().join("plain"),
        dir.path().join("wrapped"),
    );
    // Without the wrapper the table is unsorted; through it, it is sorted and marked: the
    // same bytes as the program whose table was emitted in order with the marker cleared.
    assert!(std::fs::read(&p).unwrap() != std::fs::read(&r).unwrap());
    assert!(
        std::fs::read(&w).unwrap() == std::fs::read(&r).unwrap(),
        "{target}: wrapped link differs from the reference"
    );
    let check = run(&["check", s(&w), "--format", "json"]);
    assert_eq!(code(&check), 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&check)).unwrap();
    assert_eq!(v["files"][0]["report"]["sorted"], true);
    assert_eq!(v["files"][0]["report"]["marker"]["value"], 0);
    assert_eq!(v["files"][0]["report"]["entries"], N);
}

#[test]
fn rustc_x86_64_unknown_none() {
    rustc_links_through_the_wrapper("x86_64-unknown-none", Arch::X86_64);
}

#[test]
fn rustc_armv7a_none_eabi() {
    rustc_links_through_the_wrapper("armv7a-none-eabi", Arch::Arm);
}

#[test]
fn explicit_link_subcommand_sorts_the_output() {
    if !asm::available(Arch::X86_64) {
        return;
    }
    let dir = tempdir();
    let sorted: Vec<usize> = (0..N).collect();
    let reference = asm::link(
        Arch::X86_64,
        dir.path(),
        &asm::source(Arch::X86_64, Layout::LinuxX86, N, &sorted, 0, false),
        false,
        "ref",
    );
    std::fs::write(
        dir.path().join("x.s"),
        asm::source(
            Arch::X86_64,
            Layout::LinuxX86,
            N,
            &shuffled(&sorted, 3),
            1,
            false,
        ),
    )
    .unwrap();
    assert!(Command::new("gcc")
        .args(["-g", "-c", "-o", "x.o", "x.s"])
        .current_dir(dir.path())
        .status()
        .unwrap()
        .success());
    let out = tool()
        .args([
            "link",
            "--",
            "gcc",
            "-g",
            "-nostdlib",
            "-Wl,--build-id=none",
            "-static",
            "-no-pie",
            "-o",
            "out",
            "x.o",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read(dir.path().join("out")).unwrap() == std::fs::read(reference).unwrap());
}

#[test]
fn linker_mode_failures_propagate() {
    let dir = tempdir();
    // The real linker fails: its exit code is the wrapper's.
    let out = tool()
        .args(["link", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3);
    // Invoked as the linker (first argument not a subcommand), with the linker from the env.
    let out = tool()
        .env("EXTABLE_TOOL_LINKER", "false")
        .args(["-flavor", "gnu", "-o", "x"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    // A missing linker is an error naming it.
    let out = tool()
        .env("EXTABLE_TOOL_LINKER", "/nonexistent/ld")
        .args(["-o", "x", "x.o"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("/nonexistent/ld: cannot run the linker"),
        "{}",
        stderr(&out)
    );
    // An output without __ex_table is left alone.
    let plain = dir.path().join("plain");
    std::fs::write(
        dir.path().join("p.s"),
        ".text\n.globl _start\n_start: nop\n",
    )
    .unwrap();
    let out = tool()
        .args(["link", "--", "gcc", "-nostdlib", "-static", "-o"])
        .arg(&plain)
        .arg(dir.path().join("p.s"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A failed check fails the link.
    let bad = asm::source(Arch::X86_64, Layout::Extable, 4, &[1, 0, 3, 2], 1, false)
        .replace(".long handler0 - .", ".long extable_main_sort_needed - .");
    std::fs::write(dir.path().join("bad.s"), bad).unwrap();
    let out = tool()
        .args([
            "link",
            "--",
            "gcc",
            "-nostdlib",
            "-static",
            "-no-pie",
            "-o",
            "bad",
            "bad.s",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("[handler-not-function]"),
        "{}",
        stderr(&out)
    );
}

/// A linker script at `dir/name` running `body` under `sh`.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn a_linker_killed_by_a_signal_is_reported_with_128_plus_n() {
    let dir = tempdir();
    let ld = script(dir.path(), "ld", "kill -9 $$");
    let out = tool()
        .args(["link", "--"])
        .arg(&ld)
        .args(["-o", "k"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 128 + 9, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{} killed by signal 9", ld.display())),
        "{}",
        stderr(&out)
    );
}

/// Without -o, `a.out` is sorted only when the linker wrote it in this run.
#[test]
fn the_default_output_is_sorted_only_if_the_linker_wrote_it() {
    use common::synth::{sorted_specs, Program};
    let dir = tempdir();
    let specs = sorted_specs(Layout::Extable, 30);
    let shuffled_elf = Program::new(Layout::Extable, true, false, shuffled(&specs, 4)).build();
    let sorted_elf = Program::new(Layout::Extable, true, false, specs)
        .marker_value(0)
        .build();
    let prepared = write(dir.path(), "prepared", &shuffled_elf);
    let stale = write(dir.path(), "a.out", &shuffled_elf);
    // A linker that writes nothing: the stale a.out stays as it was.
    let idle = script(dir.path(), "idle-ld", "exit 0");
    let out = tool()
        .args(["link", "--"])
        .arg(&idle)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not write a.out"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read(&stale).unwrap() == shuffled_elf);
    // A linker that writes a.out: it is sorted.
    let writer = script(
        dir.path(),
        "writing-ld",
        &format!("cat '{}' > a.out", prepared.display()),
    );
    let out = tool()
        .args(["link", "--"])
        .arg(&writer)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read(&stale).unwrap() == sorted_elf);
}
