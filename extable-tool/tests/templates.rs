//! The kernel templates (`templates/x86_64`, `templates/aarch64`) built the way their README
//! says, with this crate's `extable-tool` binary as the linker (rust-lld, then sort and
//! check), then booted in QEMU: each must find its main table sorted by the tool, recover
//! from a fault in an `#[extable]` probe, and fix a fault through a registered module table.
//! A copy of the x86_64 template whose linker script merges the table into `.rodata` must
//! fail to link with a message that says what to add.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Environment variables of the outer cargo run that must not leak into the template build.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
];

/// How long a boot may take before the emulator is killed (a boot takes well under 1 s).
const BOOT_TIMEOUT_SECS: &str = "20";

fn template_dir(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../templates")
        .join(arch)
        .canonicalize()
        .expect("the template exists")
}

/// `cargo build --release` in the template, linked through `extable-tool`; the kernel.
fn build(arch: &str, target: &str) -> PathBuf {
    let dir = template_dir(arch);
    let out = cargo_build(&dir, target, &dir.join("target"));
    assert!(
        out.status.success(),
        "building the {arch} template failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("target").join(target).join("release/kernel")
}

/// `cargo build --release` in `dir` for `target`, linked through `extable-tool`. Each
/// template keeps its own target directory: a nested cargo must not share the outer build's.
fn cargo_build(dir: &Path, target: &str, target_dir: &Path) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(dir)
        .args(["build", "--release"])
        .env("CARGO_TARGET_DIR", target_dir)
        .env(
            format!(
                "CARGO_TARGET_{}_LINKER",
                target.to_uppercase().replace('-', "_")
            ),
            env!("CARGO_BIN_EXE_extable-tool"),
        )
        .stdin(Stdio::null());
    for v in SCRUBBED_ENV {
        c.env_remove(v);
    }
    c.output().expect("run cargo")
}

/// Build a copy of the x86_64 template whose linker script has `rodata` as its `.rodata`
/// output section instead of the fragment's `__ex_table`; cargo's stderr (the link fails).
fn build_with_rodata(rodata: &str) -> String {
    let template = template_dir("x86_64");
    let copy = tempfile::tempdir().expect("temporary directory");
    for file in [
        "Cargo.lock",
        "build.rs",
        "src/main.rs",
        ".cargo/config.toml",
    ] {
        std::fs::create_dir_all(copy.path().join(file).parent().unwrap()).expect("mkdir");
        std::fs::copy(template.join(file), copy.path().join(file)).expect("copy the template");
    }
    // Canonical, so that cargo sees the same package as the template's and reuses its build.
    let runtime = template
        .join("../../extable-runtime")
        .canonicalize()
        .expect("runtime");
    let manifest = std::fs::read_to_string(template.join("Cargo.toml")).expect("Cargo.toml");
    let manifest = manifest.replace("../../extable-runtime", runtime.to_str().expect("utf-8"));
    std::fs::write(copy.path().join("Cargo.toml"), manifest).expect("write Cargo.toml");
    let script = std::fs::read_to_string(template.join("link.ld")).expect("link.ld");
    let script = script
        .replace(
            "INCLUDE extable-x86_64.ld",
            ".text.fixup : { *(.text.fixup .text.fixup.*) }",
        )
        .replace(".rodata : { *(.rodata .rodata.*) }", rodata);
    assert!(script.contains(rodata), "the template's script changed");
    std::fs::write(copy.path().join("link.ld"), script).expect("write link.ld");
    // The template's own target directory: the dependencies are built already.
    let out = cargo_build(copy.path(), "x86_64-unknown-none", &template.join("target"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "linked although the table is merged:\n{stderr}"
    );
    stderr
}

/// Boot `qemu ARGS -kernel KERNEL` under a timeout.
fn boot(qemu: &[&str], kernel: &Path) -> Output {
    Command::new("timeout")
        .arg(BOOT_TIMEOUT_SECS)
        .args(qemu)
        .args([
            "-accel",
            "tcg",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(kernel)
        .stdin(Stdio::null())
        .output()
        .expect("run qemu under timeout")
}

/// The boot's console must show each step, the trap of the probe's fault as `Trap`'s
/// documentation describes it for this kernel (`trap`), and end with `TEMPLATE OK`, with
/// QEMU's exit status `want`.
fn judge(arch: &str, out: &Output, trap: &str, want: i32) {
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let report = format!(
        "{arch} template: {}\n{console}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "main table: ",
        ", SortedByTool",
        "probe(mapped) = Ok(12345678)",
        ") = Err(Fault",
        "module table: 1 entries; module_read(",
        ") = -14",
        trap,
        "TEMPLATE OK",
    ] {
        assert!(console.contains(needle), "missing {needle:?}: {report}");
    }
    assert_eq!(out.status.code(), Some(want), "{report}");
}

#[test]
fn x86_64_template_boots_and_recovers() {
    let kernel = build("x86_64", "x86_64-unknown-none");
    let qemu = [
        "qemu-system-x86_64",
        "-M",
        "microvm",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
    ];
    // isa-debug-exit: the kernel writes 0x10, QEMU exits with 0x10 << 1 | 1.
    // #PF (vector 14), not present on a read in ring 0 (error code 0), CR2 = 0x8000_0000.
    let trap = "Trap { nr: 14, kind: NotMapped, error_code: 0, address: Some(2147483648) }";
    judge("x86_64", &boot(&qemu, &kernel), trap, 0x21);
}

#[test]
fn aarch64_template_boots_and_recovers() {
    let kernel = build("aarch64", "aarch64-unknown-none");
    let qemu = [
        "qemu-system-aarch64",
        "-M",
        "virt",
        "-cpu",
        "cortex-a57",
        "-semihosting",
    ];
    // A data abort at EL1 (EC 0x25 = 37), ESR_EL1 0x96000010 (IL, synchronous external
    // abort: nothing at that physical address), FAR_EL1 = 0x1_0000_0000.
    let trap = "Trap { nr: 37, kind: Bus, error_code: 2516582416, address: Some(4294967296) }";
    judge("aarch64", &boot(&qemu, &kernel), trap, 0);
}

#[test]
fn a_table_merged_into_rodata_without_bounds_fails_the_link_saying_what_to_add() {
    let stderr = build_with_rodata(".rodata : { *(.rodata .rodata.*) *(__ex_table) }");
    assert!(
        stderr.contains("undefined because no output section is named __ex_table")
            && stderr.contains("KEEP(*(__ex_table))"),
        "{stderr}"
    );
}

#[test]
fn a_table_merged_into_rodata_with_bounds_fails_the_link_saying_what_to_add() {
    let stderr = build_with_rodata(
        ".rodata : { *(.rodata .rodata.*) __start___ex_table = .; \
         KEEP(*(__ex_table)) __stop___ex_table = .; }",
    );
    assert!(
        stderr.contains("no __ex_table section: the table is merged into .rodata")
            && stderr.contains("KEEP(*(__ex_table))"),
        "{stderr}"
    );
}
