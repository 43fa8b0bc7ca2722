//! Command-line habits: subcommand typos, linker mode only when invoked as a linker,
//! stripped files, singular and plural, quiet `sort`, `dump` of several files, JSON errors
//! without stray lines, demangled names.

mod common;

use std::path::Path;
use std::process::Command;

use common::asm::{self, Arch};
use common::synth::*;
use common::*;
use extable_tool::Layout;
use serde_json::Value;

fn ours(specs: Vec<Spec>) -> Program {
    Program::new(Layout::Extable, true, false, specs)
}

fn good() -> Vec<Spec> {
    sorted_specs(Layout::Extable, 12)
}

#[test]
fn a_mistyped_subcommand_is_an_error_with_a_suggestion_not_a_link() {
    let out = tool()
        .env("EXTABLE_TOOL_LINKER", "/nonexistent/ld")
        .args(["chek", "k.elf"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("unrecognized subcommand 'chek'"), "{err}");
    assert!(err.contains("'check'"), "{err}");
    assert!(!err.contains("linker"), "{err}");
    // A forgotten subcommand: usage, not a link.
    let out = tool()
        .env("EXTABLE_TOOL_LINKER", "/nonexistent/ld")
        .arg("k.elf")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(!stderr(&out).contains("linker"), "{}", stderr(&out));
    // `-o` without objects is not a link either.
    let out = tool()
        .env("EXTABLE_TOOL_LINKER", "/nonexistent/ld")
        .args(["-o", "x"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(!stderr(&out).contains("cannot run the linker"));
}

#[test]
fn linker_mode_by_program_name_or_link_arguments() {
    let dir = tempdir();
    let ld = dir.path().join("extable-ld");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_extable-tool"), &ld).unwrap();
    // Invoked as extable-ld: every argument goes to the real linker (here: exit 3).
    let out = Command::new(&ld)
        .env("EXTABLE_TOOL_LINKER", "sh")
        .args(["-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // Arguments that only a link has: `-flavor` first, or `-o` with objects.
    for args in [
        &["-flavor", "gnu", "-o", "x"][..],
        &["-m64", "-o", "x", "a.o", "b.rlib"][..],
        &["@/tmp/linker-arguments"][..],
    ] {
        let out = tool()
            .env("EXTABLE_TOOL_LINKER", "false")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_stripped_file_is_told_it_lacks_the_symbol_table() {
    if !asm::available(Arch::X86_64) || !have("strip") {
        return;
    }
    let dir = tempdir();
    let f = asm::link(
        Arch::X86_64,
        dir.path(),
        &asm::source(Arch::X86_64, Layout::LinuxX86, 4, &[0, 1, 2, 3], 0, false),
        false,
        "k",
    );
    assert!(Command::new("strip").arg(&f).status().unwrap().success());
    for cmd in ["check", "sort", "dump"] {
        let out = run(&[cmd, s(&f)]);
        assert_eq!(code(&out), 1, "{cmd}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("{}: no symbol table (.symtab)", f.display())),
            "{err}"
        );
        assert!(err.contains("main_extable_sort_needed"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn counts_are_singular_or_plural() {
    let dir = tempdir();
    let one = write(
        dir.path(),
        "one",
        &ours(sorted_specs(Layout::Extable, 1)).build(),
    );
    let out = stdout(&run(&["check", s(&one)]));
    assert!(
        out.contains("1 entry, sorted: 0 errors, 0 warnings, 0 notes"),
        "{out}"
    );
    let mut specs = good();
    specs[2].insn = RODATA + 8;
    let bad = write(dir.path(), "bad", &ours(specs).build());
    let out = stdout(&run(&["check", s(&bad)]));
    assert!(
        out.contains("12 entries, unsorted: 1 error, 0 warnings, 1 note"),
        "{out}"
    );
    let dump = stdout(&run(&["dump", s(&one)]));
    assert!(
        dump.lines().next().unwrap().contains(", 1 entry, "),
        "{dump}"
    );
}

#[test]
fn sort_prints_one_summary_line_and_notes_only_when_verbose() {
    let mut specs = good();
    specs[6] = specs[5]; // an identical duplicate: a note
    let dir = tempdir();
    let f = write(dir.path(), "f", &ours(shuffled(&specs, 4)).build());
    let out = run(&["sort", s(&f)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "notes are hidden");
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("extable table, 12 entries: sorted, "),
        "{text}"
    );
    let g = write(dir.path(), "g", &ours(shuffled(&specs, 4)).build());
    let out = run(&["sort", "-v", s(&g)]);
    assert!(
        stderr(&out).contains("[identical-duplicate]"),
        "{}",
        stderr(&out)
    );
    // Warnings are shown and counted in the summary.
    let mut specs = good();
    specs[1].fixup = TEXT + 9 * FUNC_SIZE + 0x10;
    let h = write(dir.path(), "h", &ours(shuffled(&specs, 2)).build());
    let out = run(&["sort", s(&h)]);
    assert!(stderr(&out).contains("[fixup-outside-function]"));
    assert!(stdout(&out).contains("(1 warning)"), "{}", stdout(&out));
}

#[test]
fn dump_takes_several_files_and_json_errors_print_no_stray_line() {
    let dir = tempdir();
    let a = write(dir.path(), "a", &ours(good()).marker_value(0).build());
    let b = write(
        dir.path(),
        "b",
        &Program::new(
            Layout::LinuxArm64,
            true,
            false,
            sorted_specs(Layout::LinuxArm64, 3),
        )
        .build(),
    );
    let missing = dir.path().join("missing");
    let out = run(&["dump", "--no-lines", s(&a), s(&b)]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("a: extable table at 0x30000, 12 entries"),
        "{text}"
    );
    assert!(
        text.contains("b: linux-arm64 table at 0x30000, 3 entries"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1 + 12 + 1 + 3);
    for cmd in ["dump", "check", "sort"] {
        let out = run(&[cmd, "--format", "json", s(&a), s(&missing), s(&b)]);
        assert_eq!(code(&out), 2, "{cmd}");
        assert_eq!(stderr(&out), "", "{cmd}: JSON only");
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["schema"], "extable-tool/1");
        assert_eq!(v["command"], cmd);
        let files = v["files"].as_array().unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[1]["status"], "unreadable");
        assert!(files[1]["error"].as_str().unwrap().contains("cannot open"));
        let ok = match cmd {
            "dump" => "listed",
            "check" => "clean",
            _ => "unchanged",
        };
        assert_eq!(files[0]["status"], ok, "{cmd}: {v:#}");
        // One shape for every command and every file.
        for f in files {
            let mut keys: Vec<_> = f.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            assert_eq!(
                keys,
                ["dump", "error", "file", "moved", "report", "status", "written"]
            );
        }
    }
}

fn named_source(names: &[&str]) -> String {
    let mut src = String::from(
        ".text\n.globl _start\n.type _start, @function\n_start: ret\n.size _start, .-_start\n",
    );
    for (k, n) in names.iter().enumerate() {
        src += &format!(
            ".globl {n}\n.type {n}, @function\n{n}:\n  nop\n.Li{k}:\n  movb (%rdi), %al\n.Lf{k}:\n  ret\n.size {n}, .-{n}\n"
        );
    }
    src += ".section __ex_table,\"a\"\n.balign 4\n";
    for k in 0..names.len() {
        src += &format!(".long .Li{k} - .\n.long .Lf{k} - .\n.long 3\n");
    }
    src += ".data\n.balign 4\n.globl main_extable_sort_needed\n.type main_extable_sort_needed, @object\n.size main_extable_sort_needed, 4\nmain_extable_sort_needed: .long 0\n";
    src
}

fn dump_symbols(f: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["dump", "--format", "json", s(f)];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_str(&stdout(&run(&args))).unwrap();
    v["files"][0]["dump"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["insn"]["symbol"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn rust_and_cpp_symbols_are_demangled_unless_asked_not_to() {
    if !asm::available(Arch::X86_64) {
        return;
    }
    let legacy = "_ZN4core3fmt5write17h0123456789abcdefE";
    let v0 = "_RNvCs1234_7mycrate7read_u8";
    let cpp = "_ZN2ns4copyEPvPKvm";
    let dir = tempdir();
    let f = asm::link(
        Arch::X86_64,
        dir.path(),
        &named_source(&[legacy, v0, cpp, "plain_c"]),
        false,
        "k",
    );
    let got = dump_symbols(&f, &[]);
    assert_eq!(
        got,
        [
            "core::fmt::write::h0123456789abcdef+0x1",
            "mycrate[3c1c0]::read_u8+0x1",
            "ns::copy(void*, void const*, unsigned long)+0x1",
            "plain_c+0x1"
        ]
    );
    // The same names as binutils' c++filt (and addr2line -C).
    if have("c++filt") {
        for (name, want) in [legacy, v0, cpp].iter().zip(&got) {
            let o = Command::new("c++filt").arg(name).output().unwrap();
            let filt = String::from_utf8_lossy(&o.stdout).trim().to_string();
            assert_eq!(format!("{filt}+0x1"), *want);
        }
    }
    let raw = dump_symbols(&f, &["--no-demangle"]);
    assert_eq!(raw[0], format!("{legacy}+0x1"));
    assert_eq!(raw[2], format!("{cpp}+0x1"));
}

#[test]
fn link_mode_prints_one_summary_line() {
    if !asm::available(Arch::X86_64) {
        return;
    }
    let dir = tempdir();
    let order = shuffled(&(0..8).collect::<Vec<usize>>(), 5);
    std::fs::write(
        dir.path().join("x.s"),
        asm::source(Arch::X86_64, Layout::Extable, 8, &order, 1, false),
    )
    .unwrap();
    let out = tool()
        .args([
            "link",
            "--",
            "gcc",
            "-nostdlib",
            "-static",
            "-no-pie",
            "-o",
            "k",
            "x.s",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("extable-tool: k: extable table, 8 entries: sorted, "),
        "{err}"
    );
}

/// The program starts lean on GNU/Linux (its build script): without loading
/// `libgcc_s.so.1` (the unwinder is linked in from `libgcc_eh.a`) when the C compiler has
/// that archive, and with packed relative relocations (`DT_RELR`) when the C library is
/// glibc 2.36 or later.
#[test]
fn the_program_starts_lean() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_extable-tool")])
        .output()
        .expect("readelf (binutils) runs");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let has_archive = Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .is_ok_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_absolute());
    if has_archive {
        let needed: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1)?.split(']').next())
            .collect();
        assert!(!needed.is_empty(), "{dynamic}");
        assert!(
            needed
                .iter()
                .all(|n| n.starts_with("libc.so") || n.starts_with("ld-linux")),
            "{needed:?}"
        );
    }
    let glibc = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let version = glibc.strip_prefix("glibc ").and_then(|v| {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    if version.is_some_and(|v| v >= (2, 36)) {
        assert!(dynamic.contains("(RELR)"), "{dynamic}");
    }
}
