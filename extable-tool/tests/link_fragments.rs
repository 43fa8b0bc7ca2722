//! extable-runtime's linker-script fragments (`link/extable-<arch>.ld`), one per
//! architecture: a real object with one entry, one fixup stub, one handler and the sort
//! marker, assembled by binutils and linked by rust-lld with `--gc-sections` through a script
//! that only INCLUDEs the fragment (found on the search path, as the runtime's build script
//! arranges). The output must hold `__ex_table` in its own section between the start/stop
//! symbols, `.text.fixup` in its own section, and a marker that `extable-tool sort` clears in
//! the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection, ObjectSymbol};

/// The parts of the test object that differ per architecture.
struct Arch {
    fragment: &'static str,
    assembler: &'static str,
    load: &'static str,
    ret: &'static str,
    error: &'static str,
}

const X86_64: Arch = Arch {
    fragment: "extable-x86_64.ld",
    assembler: "as",
    load: "mov (%rdi), %rax",
    ret: "ret",
    error: "mov $-14, %rax",
};

const ARM: Arch = Arch {
    fragment: "extable-arm.ld",
    assembler: "arm-linux-gnueabihf-as",
    load: "ldr r0, [r0]",
    ret: "bx lr",
    error: "mvn r0, #13",
};

const AARCH64: Arch = Arch {
    fragment: "extable-aarch64.ld",
    assembler: "aarch64-linux-gnu-as",
    load: "ldr x0, [x0]",
    ret: "ret",
    error: "mov x0, #-14",
};

/// The object: `_start` loads (covered by the entry), the fixup stub returns -14, the handler
/// returns; the marker is the runtime's symbol in the section rustc gives it.
fn source(arch: &Arch) -> String {
    let Arch {
        load, ret, error, ..
    } = arch;
    format!(
        r#"
    .section .text._start, "ax"
    .globl _start
    .type _start, %function
_start:
7:  {load}
    {ret}
    .size _start, . - _start

    .section .text.fixup, "ax"
8:  {error}
    {ret}

    .section .text.handler, "ax"
    .type handler, %function
handler:
    {ret}
    .size handler, . - handler

    .section __ex_table, "aR"
    .balign 4
    .long 7b - ., 8b - ., handler - .

    .section .data.extable_main_sort_needed, "aw"
    .balign 4
    .globl extable_main_sort_needed
    .type extable_main_sort_needed, %object
    .size extable_main_sort_needed, 4
extable_main_sort_needed:
    .long 1
"#
    )
}

/// The kernel's script: the fragment before `.text`, nothing else about the table.
const SCRIPT: &str = "ENTRY(_start)
SECTIONS
{
    . = 0x40200000;
    INCLUDE FRAGMENT
    .text : { *(.text .text.*) }
    .data : { *(.data .data.*) }
}
";

fn rust_lld() -> PathBuf {
    let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "target-libdir"])
        .output()
        .expect("rustc --print target-libdir");
    let libdir = PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim());
    libdir
        .parent()
        .expect("rustlib/<host>")
        .join("bin/rust-lld")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Assemble, link through the fragment, sort; the linked file.
fn link(arch: &Arch, dir: &Path) -> PathBuf {
    let (src, obj, script, elf) = (
        dir.join("t.s"),
        dir.join("t.o"),
        dir.join("k.ld"),
        dir.join("k.elf"),
    );
    std::fs::write(&src, source(arch)).expect("write the source");
    std::fs::write(&script, SCRIPT.replace("FRAGMENT", arch.fragment)).expect("script");
    run(Command::new(arch.assembler).arg(&src).arg("-o").arg(&obj));
    let fragments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../extable-runtime/link");
    run(Command::new(rust_lld())
        .args(["-flavor", "gnu", "--gc-sections", "-static", "-L"])
        .arg(&fragments)
        .arg("-T")
        .arg(&script)
        .arg(&obj)
        .arg("-o")
        .arg(&elf));
    run(Command::new(env!("CARGO_BIN_EXE_extable-tool"))
        .arg("sort")
        .arg(&elf));
    elf
}

fn check(arch: &Arch) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let elf = link(arch, dir.path());
    let data = std::fs::read(&elf).expect("read the output");
    let file = object::File::parse(&*data).expect("parse the output");
    let section = |name: &str| {
        file.section_by_name(name)
            .unwrap_or_else(|| panic!("{}: no {name} section", arch.fragment))
    };
    let symbol = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .unwrap_or_else(|| panic!("{}: no {name}", arch.fragment))
            .address()
    };
    let table = section("__ex_table");
    assert_eq!(table.size(), 12, "{}: the entry kept", arch.fragment);
    assert_eq!(symbol("__start___ex_table"), table.address());
    assert_eq!(symbol("__stop___ex_table"), table.address() + 12);
    let fixup = section(".text.fixup");
    assert!(fixup.size() > 0, "{}: the fixup stub kept", arch.fragment);
    let marker = symbol("extable_main_sort_needed");
    let marker_section = file
        .sections()
        .find(|s| (s.address()..s.address() + s.size()).contains(&marker))
        .expect("the marker in a section");
    let bytes = marker_section
        .data()
        .expect("the marker has bytes in the file");
    let at = (marker - marker_section.address()) as usize;
    assert_eq!(
        &bytes[at..at + 4],
        &[0; 4],
        "{}: marker cleared by the sort",
        arch.fragment
    );
}

#[test]
fn x86_64_fragment() {
    check(&X86_64);
}

#[test]
fn arm_fragment() {
    check(&ARM);
}

#[test]
fn aarch64_fragment() {
    check(&AARCH64);
}
