//! Real kernel patterns, built with the real assemblers and linkers: correct tables check
//! with no error and no warning, and each seeded defect is found by its rule.
//!
//! Linux places fixups in `.fixup` sections merged into `.text` by its linker script, at
//! local labels and in exits shared by several functions, and keeps its table in writable
//! data; this project's runtime puts its stubs in `.text.fixup`, which rust-lld's default
//! layout merges into `.text`. The instruction-level fixtures move an `insn` into the middle
//! of an instruction, off the instruction grid, or onto an instruction that cannot access
//! memory under a type that says it does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// A Linux-like linker script: `.fixup` merged into `.text`, the table in writable data.
const LINUX_SCRIPT: &str = "ENTRY(_start)
SECTIONS {
  . = 0x400000;
  .text : { *(.text) *(.fixup) }
  . = ALIGN(0x1000);
  .data : { *(.data) }
  __ex_table : { *(__ex_table) }
}
";

/// [`LINUX_SCRIPT`] at x86-64 Linux's kernel base, where addresses exceed 2^53.
fn high_script() -> String {
    LINUX_SCRIPT.replace("0x400000", "0xffffffff81000000")
}

/// Assemble `src` with `cc` and link it (with `script` when given) into `dir/out`.
fn build(cc: &str, dir: &Path, src: &str, script: Option<&str>) -> PathBuf {
    build_with(cc, &[], dir, src, script)
}

/// [`build`] with more compiler driver flags.
fn build_with(cc: &str, flags: &[&str], dir: &Path, src: &str, script: Option<&str>) -> PathBuf {
    std::fs::write(dir.join("x.s"), src).unwrap();
    let mut c = Command::new(cc);
    c.args(["-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none"]);
    c.args(flags);
    if let Some(script) = script {
        std::fs::write(dir.join("k.lds"), script).unwrap();
        c.arg("-Wl,-T,k.lds");
    }
    let status = c
        .args(["-o", "out", "x.s"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{cc} failed");
    dir.join("out")
}

/// Link with rust-lld's default layout (no script), as a zero-config Rust kernel does.
fn build_rust_lld(dir: &Path, src: &str) -> Option<PathBuf> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(sysroot.stdout).ok()?;
    let lld = std::fs::read_dir(Path::new(sysroot.trim()).join("lib/rustlib"))
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin/rust-lld")))
        .find(|p| p.exists())?;
    std::fs::write(dir.join("x.s"), src).unwrap();
    let ok = Command::new("gcc")
        .args(["-c", "-o", "x.o", "x.s"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new(lld)
        .args(["-flavor", "gnu", "-static", "-o", "out", "x.o"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(ok.success());
    Some(dir.join("out"))
}

fn check_json(path: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["check", s(path), "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let v = serde_json::from_str(&stdout(&out)).expect("json");
    (code(&out), v)
}

fn report(v: &Value) -> &Value {
    &v["files"][0]["report"]
}

fn rules(v: &Value) -> Vec<String> {
    report(v)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

fn assert_clean(path: &Path) {
    let (code, v) = check_json(path, &["--deny-warnings"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["files"][0]["status"], "clean", "{v:#}");
    assert_eq!(report(&v)["errors"], 0, "{v:#}");
    assert_eq!(report(&v)["warnings"], 0, "{v:#}");
}

fn assert_finds(path: &Path, rule: &str, severity: &str, index: usize) -> Value {
    let (code, v) = check_json(path, &[]);
    let f = report(&v)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {v:#}"))
        .clone();
    assert_eq!(f["severity"], severity, "{f}");
    assert_eq!(f["index"], index, "{f}");
    assert_eq!(code, i32::from(severity == "error"), "{v:#}");
    f
}

/// The marker, sorted (0).
const LINUX_MARKER: &str = ".data\n.balign 4\n.globl main_extable_sort_needed\n.type main_extable_sort_needed, %object\n.size main_extable_sort_needed, 4\nmain_extable_sort_needed: .long 0\n";

/// x86-64 code with Linux's three fixup placements; `entries` are the table lines.
fn x86_source(entries: &str) -> String {
    format!(
        ".text
.globl _start
.type _start, @function
_start: ret
.size _start, .-_start

# A fixup in .fixup, merged into .text by the script, reached from a local label.
.type copy_a, @function
copy_a:
1:  movb (%rdi), %al
2:  ret
.size copy_a, .-copy_a
.section .fixup, \"ax\"
3:  xorl %eax, %eax
    jmp 2b
.text

# Two functions share an exit that lies in a third one (Linux's __put_user_nocheck_*).
.type get_1, @function
get_1:
4:  movzbl (%rax), %edx
    xorl %eax, %eax
    ret
.size get_1, .-get_1
.type get_8, @function
get_8:
5:  movq (%rax), %rdx
    xorl %eax, %eax
    ret
.size get_8, .-get_8
.type put_8, @function
put_8:
6:  movq %rcx, (%rax)
    xorl %ecx, %ecx
shared_exit:
    movl $-14, %ecx
    ret
.size put_8, .-put_8

# A fixup at a local label outside every function (Linux's .E_copy).
.type copy_b, @function
copy_b:
7:  rep movsb
    nop
    ret
.size copy_b, .-copy_b
.E_copy:
    movl %ecx, %eax
    ret

.section __ex_table, \"aw\"
.balign 4
{entries}
{LINUX_MARKER}"
    )
}

/// The correct x86 table: (insn, fixup, data), sorted by insn.
const X86_GOOD: [(&str, &str, u32); 5] = [
    ("1b", "3b", 3),
    ("4b", "shared_exit", 3),
    ("5b", "shared_exit", 3),
    ("6b", "shared_exit", 3),
    ("7b", ".E_copy", 4),
];

fn x86_entries(entries: &[(&str, &str, u32)]) -> String {
    entries
        .iter()
        .map(|(i, f, d)| format!(".long ({i}) - .\n.long ({f}) - .\n.long {d}\n"))
        .collect()
}

#[test]
fn linux_x86_fixup_placements_and_a_writable_table_are_clean() {
    if !have("gcc") {
        return;
    }
    let dir = tempdir();
    let out = build(
        "gcc",
        dir.path(),
        &x86_source(&x86_entries(&X86_GOOD)),
        Some(LINUX_SCRIPT),
    );
    assert_clean(&out);
}

/// The x86 table of `entries` in the encoding of one kernel generation: 3.5-4.5's pairs,
/// 4.6-5.15's handler triples (all to `ex_handler_default`), or 5.16's data words.
fn x86_generation_entries(layout: &str, entries: &[(&str, &str, u32)]) -> String {
    let handler = "\n.text\n.type ex_handler_default, @function\nex_handler_default: ret\n.size ex_handler_default, .-ex_handler_default\n";
    let lines = entries.iter().map(|(i, f, d)| match layout {
        "linux-x86-3.5" => format!(".long ({i}) - .\n.long ({f}) - .\n"),
        "linux-x86-4.6" => {
            format!(".long ({i}) - .\n.long ({f}) - .\n.long ex_handler_default - .\n")
        }
        _ => format!(".long ({i}) - .\n.long ({f}) - .\n.long {d}\n"),
    });
    lines.collect::<String>() + handler
}

/// Kernels of each x86 generation, assembled and linked by GCC and GNU ld: each is detected
/// from its entries (3 pairs are also 2 entries of 12 bytes; 5 are not), checks clean, and a
/// copy with its entries reversed and its marker set sorts to the sorted build, byte for byte.
#[test]
fn x86_generations_linked_by_gnu_ld_are_detected_checked_and_sorted() {
    if !have("gcc") {
        return;
    }
    for layout in ["linux-x86-3.5", "linux-x86-4.6", "linux-x86"] {
        for n in [3, 5] {
            assert_generation(layout, &X86_GOOD[..n], |dir, entries, marker| {
                let source = x86_source(&x86_generation_entries(layout, entries)).replace(
                    "main_extable_sort_needed: .long 0",
                    &format!("main_extable_sort_needed: .long {marker}"),
                );
                // -save-temps: the object file, whose name the symbol table holds, is x.o
                // in every build.
                build_with("gcc", &["-save-temps"], dir, &source, Some(LINUX_SCRIPT))
            });
        }
    }
}

/// s390x code with Linux's fixups in `.fixup` (which return to the instruction after the
/// access) and a handler function; `entries` are the table lines.
fn s390_source(entries: &str, marker: u32) -> String {
    format!(
        ".text
.globl _start
.type _start, @function
_start: br %r14
.size _start, .-_start
.type get_1, @function
get_1:
  lghi %r3,0
1: lg %r2,0(%r2)
2: br %r14
.size get_1, .-get_1
.type get_2, @function
get_2:
  lghi %r3,0
3: llgc %r2,0(%r2)
4: br %r14
.size get_2, .-get_2
.type put_1, @function
put_1:
5: stg %r3,0(%r2)
6: br %r14
.size put_1, .-put_1
.type put_2, @function
put_2:
  lghi %r1,1
10: stc %r3,0(%r2)
11: br %r14
.size put_2, .-put_2
.type ex_handler, @function
ex_handler: br %r14
.size ex_handler, .-ex_handler
.section .fixup, \"ax\"
7: lghi %r2,-14
   j 2b
8: lghi %r2,-14
   j 4b
9: lghi %r2,-14
   j 6b
12: lghi %r2,-14
   j 11b
.section __ex_table, \"a\"
{entries}
.data
.balign 4
.globl main_extable_sort_needed
.type main_extable_sort_needed, @object
.size main_extable_sort_needed, 4
main_extable_sort_needed: .long {marker}
"
    )
}

/// The s390 table of `entries` (insn, fixup, whether it has the handler) in the encoding of
/// one kernel generation: pairs before 5.5, a 64-bit relative handler or 0 from 5.5 to
/// 5.15, a type and data word (`EX_TYPE_FIXUP`) from 5.16.
fn s390_entries(layout: &str, entries: &[(&str, &str, bool)]) -> String {
    // The 16-byte entries hold a `long`; GNU as pads a section to its alignment.
    let align = if layout == "linux-s390-5.5" { 8 } else { 4 };
    let line = |(i, f, handler): &(&str, &str, bool)| match layout {
        "linux-s390-pair" => format!(".long ({i}) - ., ({f}) - .\n"),
        "linux-s390-5.5" if *handler => {
            format!(".long ({i}) - ., ({f}) - .\n.quad ex_handler - .\n")
        }
        "linux-s390-5.5" => format!(".long ({i}) - ., ({f}) - .\n.quad 0\n"),
        _ => format!(".long ({i}) - ., ({f}) - .\n.short 1, 0\n"),
    };
    format!(".balign {align}\n") + &entries.iter().map(line).collect::<String>()
}

/// Assemble `src` with GNU as for s390x and link it with GNU ld and [`LINUX_SCRIPT`].
fn build_s390(dir: &Path, src: &str) -> PathBuf {
    std::fs::write(dir.join("x.s"), src).unwrap();
    std::fs::write(dir.join("k.lds"), LINUX_SCRIPT).unwrap();
    for (tool, args) in [
        ("s390x-linux-gnu-as", &["-o", "x.o", "x.s"][..]),
        (
            "s390x-linux-gnu-ld",
            &["-T", "k.lds", "-o", "out", "x.o"][..],
        ),
    ] {
        let status = Command::new(tool)
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "{tool} failed");
    }
    dir.join("out")
}

/// s390 kernels of each generation, assembled and linked by GNU binutils: each is detected
/// from its entries (the sizes, 24 to 64 bytes, are multiples of several entry sizes),
/// checks clean, and a copy with its entries reversed and its marker set sorts to the sorted
/// build, byte for byte (the 5.5 handlers, 0 or not, moved as Linux's sorttable moves them).
#[test]
fn s390_generations_linked_by_gnu_ld_are_detected_checked_and_sorted() {
    if !have("s390x-linux-gnu-as") || !have("s390x-linux-gnu-ld") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs binutils-s390x-linux-gnu"
        );
        return;
    }
    const ENTRIES: [(&str, &str, bool); 4] = [
        ("1b", "7b", false),
        ("3b", "8b", true),
        ("5b", "9b", false),
        ("10b", "12b", true),
    ];
    for layout in ["linux-s390-pair", "linux-s390-5.5", "linux-s390"] {
        for n in [3, 4] {
            assert_generation(layout, &ENTRIES[..n], |dir, entries, marker| {
                build_s390(dir, &s390_source(&s390_entries(layout, entries), marker))
            });
        }
    }
}

/// A kernel built by `build` (in a directory, from its entries in table order and the
/// marker's value) with `entries` sorted and marked so is read as `layout` and checks
/// clean; one built with the entries reversed and the marker set sorts to it, byte for byte.
fn assert_generation<E: Copy>(
    layout: &str,
    entries: &[E],
    build: impl Fn(&Path, &[E], u32) -> PathBuf,
) {
    let what = format!("{layout}, {} entries", entries.len());
    let sorted_dir = tempdir();
    let sorted = build(sorted_dir.path(), entries, 0);
    assert_clean(&sorted);
    let (_, v) = check_json(&sorted, &[]);
    assert_eq!(report(&v)["layout"], layout, "{what}: {v:#}");

    let reversed: Vec<E> = entries.iter().rev().copied().collect();
    let dir = tempdir();
    let shuffled = build(dir.path(), &reversed, 1);
    let out = run(&["sort", s(&shuffled)]);
    assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
    assert!(
        std::fs::read(&shuffled).unwrap() == std::fs::read(&sorted).unwrap(),
        "{what}: the sorted copy differs from the sorted build"
    );
}

#[test]
fn x86_insn_inside_an_instruction_is_an_error() {
    if !have("gcc") {
        return;
    }
    let dir = tempdir();
    let mut e = X86_GOOD;
    e[2].0 = "5b+1"; // movq (%rax), %rdx is 3 bytes
    let out = build(
        "gcc",
        dir.path(),
        &x86_source(&x86_entries(&e)),
        Some(LINUX_SCRIPT),
    );
    let f = assert_finds(&out, "insn-mid-instruction", "error", 2);
    let addrs = f["addresses"].as_array().unwrap();
    assert!(
        addrs
            .iter()
            .any(|a| a["role"] == "instruction" && a["symbol"] == "get_8"),
        "{f}"
    );
    assert!(
        f["message"].as_str().unwrap().contains("<get_8+0x1>"),
        "{f}"
    );
    // The instruction-level rules can be turned off.
    let (code, v) = check_json(&out, &["--no-instructions"]);
    assert_eq!(code, 0, "{v:#}");
    assert!(rules(&v).is_empty(), "{v:#}");
}

#[test]
fn x86_uaccess_on_an_instruction_without_memory_operand_is_a_note() {
    if !have("gcc") {
        return;
    }
    let dir = tempdir();
    let mut e = X86_GOOD;
    // `xorl %eax, %eax` right after the load: an instruction start, but no access.
    e[1].0 = "4b+3";
    let out = build(
        "gcc",
        dir.path(),
        &x86_source(&x86_entries(&e)),
        Some(LINUX_SCRIPT),
    );
    // A note, not a warning: Linux 6.1 i386 has two such dead entries in a correct kernel.
    let f = assert_finds(&out, "insn-no-memory-access", "note", 1);
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("`xor`") && msg.contains("can never be used"),
        "{f}"
    );
    assert_eq!(check_json(&out, &["--deny-warnings"]).0, 0);
    // COPY (type 4) is not judged: its number was reused across versions.
    let mut e = X86_GOOD;
    e[1] = ("4b+3", "shared_exit", 4);
    let out = build(
        "gcc",
        dir.path(),
        &x86_source(&x86_entries(&e)),
        Some(LINUX_SCRIPT),
    );
    assert_clean(&out);
}

/// This project's layout, linked by rust-lld without a script: `.text.fixup` lands in
/// `.text`, outside every function symbol.
fn extable_source(fixup_in_other_function: bool) -> String {
    let fixup = if fixup_in_other_function {
        "other+1"
    } else {
        "9b"
    };
    format!(
        ".text
.globl _start
.type _start, @function
_start: ret
.size _start, .-_start
.type read_u8, @function
read_u8:
1:  movb (%rdi), %al
    ret
.size read_u8, .-read_u8
.type other, @function
other:
    nop
    ret
.size other, .-other
.type handler, @function
handler: ret
.size handler, .-handler
.section .text.fixup, \"ax\"
9:  jmp read_u8
.section __ex_table, \"aR\"
.balign 4
.long 1b - .
.long {fixup} - .
.long handler - .
.data
.balign 4
.globl extable_main_sort_needed
.type extable_main_sort_needed, @object
.size extable_main_sort_needed, 4
extable_main_sort_needed: .long 0
"
    )
}

#[test]
fn extable_layout_with_rust_lld_default_layout_is_clean() {
    let dir = tempdir();
    let Some(out) = build_rust_lld(dir.path(), &extable_source(false)) else {
        return;
    };
    // The stub section really was merged.
    let sections = Command::new("readelf")
        .args(["-SW"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        !stdout(&sections).contains(".text.fixup"),
        "{}",
        stdout(&sections)
    );
    assert_clean(&out);
    // A fixup inside another function is still a warning for this layout.
    let dir = tempdir();
    let out = build_rust_lld(dir.path(), &extable_source(true)).unwrap();
    assert_finds(&out, "fixup-outside-function", "warning", 0);
}

/// AArch64 with Linux's arm64 layout: (insn, fixup, type) lines.
fn arm64_source(entries: &[(&str, &str, u16)]) -> String {
    let table: String = entries
        .iter()
        .map(|(i, f, t)| format!(".long ({i}) - .\n.long ({f}) - .\n.short {t}\n.short 0\n"))
        .collect();
    format!(
        ".text
.globl _start
.type _start, %function
_start: ret
.size _start, .-_start
.type get_user, %function
get_user:
1:  ldr x1, [x0]
    add x2, x1, #1
2:  dc cvau, x0
    ret
.size get_user, .-get_user
.section .fixup, \"ax\"
3:  mov x0, #-14
    ret
.section __ex_table, \"aw\"
.balign 4
{table}
{LINUX_MARKER}"
    )
}

#[test]
fn arm64_alignment_and_memory_access() {
    if !have("aarch64-linux-gnu-gcc") {
        return;
    }
    let cc = "aarch64-linux-gnu-gcc";
    let dir = tempdir();
    // UACCESS_ERR_ZERO on a load and on a cache maintenance by address: clean.
    let good = [("1b", "3b", 2), ("2b", "3b", 2)];
    assert_clean(&build(
        cc,
        dir.path(),
        &arm64_source(&good),
        Some(LINUX_SCRIPT),
    ));
    // insn moved by 2 bytes: no instruction starts there.
    let moved = [("1b+2", "3b", 2), ("2b", "3b", 2)];
    let out = build(cc, dir.path(), &arm64_source(&moved), Some(LINUX_SCRIPT));
    let f = assert_finds(&out, "insn-misaligned", "error", 0);
    assert!(f["message"].as_str().unwrap().contains("4-byte"), "{f}");
    // A fixup off the grid.
    let fixup = [("1b", "3b+2", 2), ("2b", "3b", 2)];
    let out = build(cc, dir.path(), &arm64_source(&fixup), Some(LINUX_SCRIPT));
    assert_finds(&out, "fixup-misaligned", "error", 0);
    // The add after the load, marked as a user access.
    let add = [("1b+4", "3b", 2), ("2b", "3b", 2)];
    let out = build(cc, dir.path(), &arm64_source(&add), Some(LINUX_SCRIPT));
    let f = assert_finds(&out, "insn-no-memory-access", "warning", 0);
    assert!(f["message"].as_str().unwrap().contains("`add"), "{f}");
    // A failing CI step: --deny-warnings and -D warnings exit 1.
    assert_eq!(check_json(&out, &["--deny-warnings"]).0, 1);
    assert_eq!(check_json(&out, &["-D", "warnings"]).0, 1);
    // Type 1 (FIXUP in 5.16-6.0, BPF later) is not judged.
    let typeless = [("1b+4", "3b", 1), ("2b", "3b", 2)];
    assert_clean(&build(
        cc,
        dir.path(),
        &arm64_source(&typeless),
        Some(LINUX_SCRIPT),
    ));
}

/// 32-bit ARM, absolute entries, in A32 or Thumb-2 code.
fn arm_source(thumb: bool, insn: &str) -> String {
    let mode = if thumb { ".thumb\n.thumb_func" } else { ".arm" };
    format!(
        ".syntax unified
.text
{mode}
.globl _start
.type _start, %function
_start: bx lr
.size _start, .-_start
{mode}
.type get_user, %function
get_user:
    movs r2, #0
1:  ldr r1, [r0, #4]
2:  ldrb r3, [r0]
    bx lr
.size get_user, .-get_user
.section .fixup, \"ax\"
{mode}
3:  mvn r0, #13
    bx lr
.section __ex_table, \"aw\"
.balign 4
.long {insn}
.long 3b
{LINUX_MARKER}"
    )
}

#[test]
fn arm_a32_and_thumb2_instruction_starts() {
    let cc = "arm-linux-gnueabihf-gcc";
    if !have(cc) {
        return;
    }
    let dir = tempdir();
    for thumb in [false, true] {
        assert_clean(&build(
            cc,
            dir.path(),
            &arm_source(thumb, "1b"),
            Some(LINUX_SCRIPT),
        ));
    }
    // A32: 2 bytes off is off the grid.
    let out = build(
        cc,
        dir.path(),
        &arm_source(false, "1b+2"),
        Some(LINUX_SCRIPT),
    );
    assert_finds(&out, "insn-misaligned", "error", 0);
    // Thumb-2: `ldr r1, [r0, #4]` is 16-bit with a low register: use the 32-bit load
    // `ldr.w` to have a second halfword.
    let src = arm_source(true, "1b+2").replace("ldr r1, [r0, #4]", "ldr.w r1, [r0, #4]");
    let out = build(cc, dir.path(), &src, Some(LINUX_SCRIPT));
    assert_finds(&out, "insn-mid-instruction", "error", 0);
    // Thumb-2, on the 16-bit load that follows: an instruction start.
    let src = arm_source(true, "2b").replace("ldr r1, [r0, #4]", "ldr.w r1, [r0, #4]");
    assert_clean(&build(cc, dir.path(), &src, Some(LINUX_SCRIPT)));
    // Big-endian BE8 images keep their instructions little-endian.
    let be8 = ["-mbig-endian", "-Wl,--be8"];
    let wide = |insn| arm_source(true, insn).replace("ldr r1, [r0, #4]", "ldr.w r1, [r0, #4]");
    let out = build_with(cc, &be8, dir.path(), &wide("1b+2"), Some(LINUX_SCRIPT));
    assert_finds(&out, "insn-mid-instruction", "error", 0);
    assert_clean(&build_with(
        cc,
        &be8,
        dir.path(),
        &wide("2b"),
        Some(LINUX_SCRIPT),
    ));
    // Thumb-2 code, 1 byte off: misaligned.
    let out = build(
        cc,
        dir.path(),
        &arm_source(true, "2b+1"),
        Some(LINUX_SCRIPT),
    );
    assert!(rules(&check_json(&out, &[]).1).contains(&"insn-misaligned".to_string()));
}

/// `cmd | jq . | python3 -m json.tool`, parsed.
fn through_jq_and_python(cmd: &[&str]) -> Value {
    let out = run(cmd);
    let jq = pipe("jq", &["."], &out.stdout);
    let py = pipe("python3", &["-m", "json.tool"], &jq);
    serde_json::from_slice(&py).expect("json")
}

fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd} failed");
    out.stdout
}

/// `nm` addresses by symbol name.
fn nm(path: &Path) -> std::collections::HashMap<String, String> {
    let out = Command::new("nm").arg(path).output().unwrap();
    stdout(&out)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let addr = u64::from_str_radix(w.next()?, 16).ok()?;
            let name = w.nth(1)?;
            Some((name.to_string(), format!("{addr:#x}")))
        })
        .collect()
}

fn readelf_section_addr(path: &Path, name: &str) -> String {
    let out = Command::new("readelf")
        .arg("-SW")
        .arg(path)
        .output()
        .unwrap();
    let line = stdout(&out)
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap()
        .to_string();
    let words: Vec<_> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == name).unwrap();
    format!("{:#x}", u64::from_str_radix(words[at + 2], 16).unwrap())
}

#[test]
fn json_addresses_survive_jq_and_python_and_match_readelf_and_nm() {
    if !have("gcc") || !have("jq") || !have("python3") {
        return;
    }
    let dir = tempdir();
    // Named labels, so that nm lists every insn and fixup; the third entry marks the xor
    // after the load (a note, to have addresses in findings too).
    let src = x86_source(&x86_entries(&[
        ("insn_a", "fix_a", 3),
        ("insn_b", "shared_exit", 3),
        ("insn_b2", "shared_exit", 3),
    ]))
    .replace("1:  movb (%rdi), %al", "1:\ninsn_a: movb (%rdi), %al")
    .replace("3:  xorl %eax, %eax", "3:\nfix_a: xorl %eax, %eax")
    .replace(
        "4:  movzbl (%rax), %edx\n    xorl",
        "4:\ninsn_b: movzbl (%rax), %edx\ninsn_b2: xorl",
    );
    let out = build("gcc", dir.path(), &src, Some(&high_script()));
    let syms = nm(&out);
    assert!(syms["insn_a"].starts_with("0xffffffff81"), "{syms:?}");

    let v = through_jq_and_python(&["dump", "--format", "json", "--no-lines", s(&out)]);
    assert_eq!(v["schema"], "extable-tool/1");
    let d = &v["files"][0]["dump"];
    assert_eq!(d["table_addr"], readelf_section_addr(&out, "__ex_table"));
    let want = [
        ("insn_a", "fix_a"),
        ("insn_b", "shared_exit"),
        ("insn_b2", "shared_exit"),
    ];
    let entries = d["entries"].as_array().unwrap();
    assert_eq!(entries.len(), want.len());
    for (e, (insn, fixup)) in entries.iter().zip(want) {
        assert_eq!(e["insn"]["addr"], syms[insn], "{e}");
        assert_eq!(e["fixup"]["addr"], syms[fixup], "{e}");
    }

    let v = through_jq_and_python(&["check", "--format", "json", s(&out)]);
    assert_eq!(v["files"][0]["status"], "clean");
    let f = &v["files"][0]["report"]["findings"][0];
    assert_eq!(f["rule"], "insn-no-memory-access");
    assert_eq!(f["severity"], "note");
    let addrs = f["addresses"].as_array().unwrap();
    assert_eq!(addrs[0]["addr"], syms["insn_b2"]);
    assert_eq!(addrs[1]["addr"], syms["shared_exit"]);
    // And jq reads them as text, digit for digit.
    let raw = run(&["check", "--format", "json", s(&out)]).stdout;
    let first = pipe(
        "jq",
        &["-r", ".files[0].report.findings[0].addresses[0].addr"],
        &raw,
    );
    assert_eq!(String::from_utf8(first).unwrap().trim(), syms["insn_b2"]);
}

#[test]
fn thumb2_literal_pools_inside_a_function_do_not_desynchronise_the_decoding() {
    let cc = "arm-linux-gnueabihf-gcc";
    if !have(cc) {
        return;
    }
    // A literal pool in the middle of the function ($d, then $t again). Decoded as Thumb,
    // its last halfword (0xe8e8) would begin a 32-bit instruction that swallows the first
    // halfword of the `bl` after the pool, and the `bl`'s second halfword (0xf8..) would
    // begin another: out of step, the load at 1b would seem to be inside an instruction.
    // The decoding restarts at the $t that follows the pool.
    let src = |insn: &str| {
        arm_source(true, insn).replace(
            "    movs r2, #0\n",
            "    ldr r2, =0xe8e80000\n    b 8f\n    .ltorg\n8:  bl _start\n",
        )
    };
    let dir = tempdir();
    let out = build(cc, dir.path(), &src("1b"), Some(LINUX_SCRIPT));
    let syms = Command::new("nm").arg(&out).output().unwrap();
    assert!(stdout(&syms).contains(" $d"), "{}", stdout(&syms));
    assert_clean(&out);
    let out = build(
        cc,
        dir.path(),
        &src("1b+2").replace("ldr r1, [r0, #4]", "ldr.w r1, [r0, #4]"),
        Some(LINUX_SCRIPT),
    );
    assert_finds(&out, "insn-mid-instruction", "error", 0);
}

#[test]
fn x86_data_inside_a_function_before_a_label_does_not_desynchronise_the_decoding() {
    if !have("gcc") {
        return;
    }
    // From the function's start the stray 0x0f and the load read as `jp rel32`, which
    // covers the load; decoding again from the label `resume` finds the load's start.
    let src = |insn: &str| {
        format!(
            ".text
.globl _start
.type _start, @function
_start: ret
.size _start, .-_start
.type with_data, @function
with_data:
    jmp resume
    .byte 0x0f
resume:
    nop
1:  movb (%rdi), %al
2:  ret
    .fill 8, 1, 0x90
.size with_data, .-with_data
.section __ex_table, \"a\"
.balign 4
.long ({insn}) - .
.long 2b - .
.long 3
{LINUX_MARKER}"
        )
    };
    let dir = tempdir();
    assert_clean(&build("gcc", dir.path(), &src("1b"), None));
    let out = build("gcc", dir.path(), &src("1b+1"), None);
    assert_finds(&out, "insn-mid-instruction", "error", 0);
}
