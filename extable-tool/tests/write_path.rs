//! The write path: in-place sorts keep the inode and write nothing to a sorted file; only
//! regular files are written; plans that would overwrite headers, the table or one another
//! are refused; failing stdout/stderr never panics; temporaries never stay behind; a
//! concurrent truncation is an error, not a signal.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::elfgen::*;
use common::sorttable::{sorttable, SortKind};
use common::synth::*;
use common::*;
use extable_tool::Layout;
use object::{Object, ObjectSection, ObjectSymbol};

/// The temporary a sort to `dest` writes before renaming it into place: hidden, next to
/// `dest`, and named by the FNV-1a hash of `dest`'s name, so that every run picks the same.
fn temporary_name(dest: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let hash = dest
        .file_name()
        .unwrap()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    dest.with_file_name(format!(".extable-tmp-{hash:016x}"))
}

/// A shuffled Linux x86-64 file with a `.rela__ex_table` (index 3 is the table), and what
/// Linux's sorttable makes of it.
fn linux_file(extra_padding: usize) -> (Vec<u8>, Vec<u8>) {
    linux_file_marked(extra_padding, 1)
}

/// [`linux_file`] with its marker holding `marker` (0 claims the shuffled table is sorted).
fn linux_file_marked(extra_padding: usize, marker: u32) -> (Vec<u8>, Vec<u8>) {
    let specs = sorted_specs(Layout::LinuxX86, 200);
    let mut p =
        Program::new(Layout::LinuxX86, true, false, shuffled(&specs, 3)).marker_value(marker);
    let mut rela = Sec::progbits(".rela__ex_table", 0, 0, vec![0x5a; 48]);
    rela.sh_type = SHT_RELA;
    rela.info = 3;
    p.extra.push(rela);
    if extra_padding > 0 {
        p.extra
            .push(Sec::progbits(".padding", 0, 0, vec![0x11; extra_padding]));
    }
    let input = p.build();
    let mut sorted = input.clone();
    sorttable(&mut sorted, SortKind::RelativeWithData).unwrap();
    (input, sorted)
}

fn times(p: &Path) -> (u64, i64, i64, i64, i64) {
    let m = fs::metadata(p).unwrap();
    (
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

#[test]
fn in_place_sort_keeps_the_inode_and_hard_links() {
    let (input, sorted) = linux_file(0);
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &input);
    let link = dir.path().join("hard-link");
    fs::hard_link(&path, &link).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();
    let out = run(&["sort", s(&path)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("sorted in place"), "{}", stdout(&out));
    assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
    assert!(fs::read(&path).unwrap() == sorted, "differs from sorttable");
    assert!(
        fs::read(&link).unwrap() == sorted,
        "the hard link kept the old bytes"
    );
    // --atomic gives the same bytes under a new inode.
    let atomic = write(dir.path(), "atomic", &input);
    let ino = fs::metadata(&atomic).unwrap().ino();
    let out = run(&["sort", "--atomic", s(&atomic)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(fs::read(&atomic).unwrap() == sorted);
    assert_ne!(fs::metadata(&atomic).unwrap().ino(), ino);
}

/// Linux i386 with `.rel__ex_table` already zeroed (as a kernel sorted by sorttable before
/// 6.13 has it) or not (as 6.13 and later leave it): no write at all, in place or atomic.
/// With the marker set, the same file is written: its marker cleared and its relocations
/// zeroed, as sorttable 6.1 does.
#[test]
fn an_already_sorted_and_marked_file_is_never_rewritten() {
    for relocations in [vec![0; 32], vec![0x5a; 32]] {
        let specs = sorted_specs(Layout::LinuxX86, 64);
        let program = |marker| {
            let mut p =
                Program::new(Layout::LinuxX86, false, false, specs.clone()).marker_value(marker);
            let mut rel = Sec::progbits(".rel__ex_table", 0, 0, relocations.clone());
            rel.sh_type = SHT_REL;
            rel.info = 3;
            p.extra.push(rel);
            p.build()
        };
        let dir = tempdir();
        let path = write(dir.path(), "vmlinux-i386", &program(0));
        std::thread::sleep(Duration::from_millis(20));
        let before = times(&path);
        for args in [vec!["sort"], vec!["sort", "--atomic"]] {
            let out = run(&[&args[..], &[s(&path)]].concat());
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            assert!(
                stdout(&out).contains("already sorted and marked, file unchanged"),
                "{args:?}: {}",
                stdout(&out)
            );
            assert_eq!(times(&path), before, "{args:?} wrote the file");
        }
        let marked = write(dir.path(), "marked", &program(1));
        let out = run(&["sort", s(&marked)]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut expected = program(1);
        sorttable(&mut expected, SortKind::RelativeWithData).unwrap();
        assert!(
            fs::read(&marked).unwrap() == expected,
            "differs from sorttable"
        );
    }
}

fn assert_refused_output(src: &Path, out: &Path, needle: &str) {
    let before = digest(src);
    let o = run(&["sort", s(src), "-o", s(out)]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{}: {err}", out.display());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("{}: ", out.display())), "{err}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert_eq!(digest(src), before);
}

#[test]
fn only_regular_files_are_written() {
    let (input, sorted) = linux_file(0);
    let dir = tempdir();
    let src = write(dir.path(), "src", &input);
    // A device: /dev/null stays a character device.
    assert_refused_output(&src, Path::new("/dev/null"), "not a regular file");
    assert!(!fs::metadata("/dev/null").unwrap().is_file());
    // A FIFO.
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    assert_refused_output(&src, &fifo, "not a regular file");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // A directory.
    assert_refused_output(&src, dir.path(), "not a regular file");
    // A dangling symbolic link stays a dangling link.
    let dangling = dir.path().join("dangling");
    symlink(dir.path().join("nowhere"), &dangling).unwrap();
    assert_refused_output(&src, &dangling, "symbolic link");
    assert!(fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!dir.path().join("nowhere").exists());
    // /dev/stdout when stdout is a pipe (`output()` pipes it).
    assert_refused_output(&src, Path::new("/dev/stdout"), "not a regular file");
    // A link to a regular file is followed and kept.
    let target = write(dir.path(), "target", b"old");
    let link = dir.path().join("link");
    symlink(&target, &link).unwrap();
    let o = run(&["sort", s(&src), "-o", s(&link)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read(&target).unwrap() == sorted);
    // The same for inputs sorted in place.
    let o = run(&["sort", "/dev/null"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let in_link = dir.path().join("in-link");
    let in_target = write(dir.path(), "in-target", &input);
    symlink(&in_target, &in_link).unwrap();
    let o = run(&["sort", s(&in_link)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::symlink_metadata(&in_link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read(&in_target).unwrap() == sorted);
}

/// The file offset of section `name`'s header field `sh_offset` in a 64-bit little-endian
/// ELF file, and the section's current `sh_offset`.
fn sh_offset_field(data: &[u8], name: &str) -> (usize, u64) {
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap());
    let shoff = u64_at(0x28) as usize;
    let (entsize, count, strndx) = (u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let strtab = u64_at(shoff + strndx * entsize + 0x18) as usize;
    (0..count)
        .map(|i| shoff + i * entsize)
        .find(|&h| {
            let at = strtab + u32::from_le_bytes(data[h..h + 4].try_into().unwrap()) as usize;
            data[at..].starts_with(name.as_bytes()) && data[at + name.len()] == 0
        })
        .map(|h| (h + 0x18, u64_at(h + 0x18)))
        .unwrap_or_else(|| panic!("no section {name}"))
}

fn with_section_at(data: &[u8], name: &str, offset: u64) -> Vec<u8> {
    let mut d = data.to_vec();
    let (field, _) = sh_offset_field(&d, name);
    d[field..field + 8].copy_from_slice(&offset.to_le_bytes());
    d
}

#[test]
fn patches_over_headers_the_table_or_each_other_are_refused() {
    let (input, _) = linux_file(0);
    let (_, table) = sh_offset_field(&input, "__ex_table");
    let (_, data) = sh_offset_field(&input, ".data");
    let shoff = u64::from_le_bytes(input[0x28..0x30].try_into().unwrap());
    let cases = [
        (0, "would overwrite the ELF header"),
        (0x40, "would overwrite the program headers"),
        (shoff, "would overwrite the section headers"),
        (table + 8, "would overwrite __ex_table"),
        (data, "would overwrite the relocations"),
    ];
    let dir = tempdir();
    for (i, (offset, needle)) in cases.into_iter().enumerate() {
        let mut bytes = with_section_at(&input, ".rela__ex_table", offset);
        if offset == 0x40 {
            // Give the file a program header table at 0x40.
            bytes[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
            bytes[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
            bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        }
        let path = write(dir.path(), &format!("f{i}"), &bytes);
        let out = dir.path().join("out");
        for args in [vec!["sort"], vec!["sort", "-o", s(&out)]] {
            let before = digest(&path);
            let o = run(&[&args[..1], &[s(&path)], &args[1..]].concat());
            let err = stderr(&o);
            assert_eq!(code(&o), 1, "{needle}: {err}");
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
            assert_eq!(digest(&path), before);
            assert!(!out.exists());
        }
    }
}

/// The marker's section placed over the ELF header: its "value" is the ELF magic. `check`
/// reports it and `sort` refuses instead of writing a 0 over the magic.
#[test]
fn a_marker_that_is_neither_0_nor_1_is_reported() {
    let (input, _) = linux_file(0);
    let bytes = with_section_at(&input, ".data", 0);
    let dir = tempdir();
    let path = write(dir.path(), "f", &bytes);
    let o = run(&["check", s(&path)]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("bad-marker-value"), "{}", stdout(&o));
    let out = dir.path().join("out");
    let o = run(&["sort", s(&path), "-o", s(&out)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(!out.exists());
    let o = run(&["sort", s(&path)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(fs::read(&path).unwrap() == bytes);
}

/// Run the tool with stdout into a pipe that is closed after the first line.
fn first_line_then_close(args: &[String]) -> (std::process::ExitStatus, String) {
    let mut child = tool()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_status_of_the_work() {
    let (input, _) = linux_file(0);
    let dir = tempdir();
    let clean = write(dir.path(), "clean", &input);
    assert_eq!(code(&run(&["sort", s(&clean)])), 0);
    // 3000 summaries (> 64 KiB) cannot all fit in the pipe: the tool meets the closed pipe.
    let many = |cmd: &str, f: &Path| {
        let mut v = vec![cmd.to_string()];
        v.extend(std::iter::repeat_n(s(f).to_string(), 3000));
        v
    };
    for cmd in ["check", "sort"] {
        let (status, err) = first_line_then_close(&many(cmd, &clean));
        assert_eq!(status.code(), Some(0), "{cmd}: {err}");
        assert!(err.is_empty(), "{cmd}: {err}");
    }
    // With errors found, the status stays 1.
    let broken = write(dir.path(), "broken", &with_section_at(&input, ".data", 0));
    let (status, err) = first_line_then_close(&many("check", &broken));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let big = write(
        dir.path(),
        "big",
        &Program::new(
            Layout::Extable,
            true,
            false,
            shuffled(&sorted_specs(Layout::Extable, 960), 1),
        )
        .build(),
    );
    let (status, err) =
        first_line_then_close(&["dump".into(), "--no-lines".into(), s(&big).into()]);
    assert_eq!(status.code(), Some(0), "dump: {err}");
    assert!(err.is_empty(), "dump: {err}");
}

/// With the standard output and error closed, the file a command opens must not take
/// their descriptors (its summary would go into the file): the tool opens /dev/null on
/// them first, as Rust's start-up does. Seen with `strace`: the input is opened as
/// descriptor 3 or above.
#[test]
fn closed_standard_streams_never_receive_the_file() {
    let (input, sorted) = linux_file(0);
    let dir = tempdir();
    let f = write(dir.path(), "f", &input);
    let trace = dir.path().join("trace");
    for cmd in ["sort", "check"] {
        let status = Command::new("sh")
            .args([
                "-c",
                r#"exec strace -qq -e trace=openat -o "$0" "$1" "$2" "$3" >&- 2>&-"#,
            ])
            .arg(&trace)
            .arg(env!("CARGO_BIN_EXE_extable-tool"))
            .args([cmd, s(&f)])
            .status()
            .expect("strace (Debian package strace) runs");
        assert_eq!(status.code(), Some(0), "{cmd}");
        assert!(fs::read(&f).unwrap() == sorted, "{cmd} changed the file");
        let trace = fs::read_to_string(&trace).unwrap();
        let open = trace
            .lines()
            .find(|l| l.contains(s(&f)))
            .unwrap_or_else(|| panic!("{cmd}: no openat of the input in {trace}"));
        let fd: i32 = open.rsplit("= ").next().unwrap().trim().parse().unwrap();
        assert!(
            fd >= 3,
            "{cmd}: the input was opened as descriptor {fd}: {open}"
        );
    }
}

fn full() -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

#[test]
fn a_full_stdout_or_stderr_is_exit_2_not_a_panic() {
    let (input, sorted) = linux_file(0);
    let dir = tempdir();
    let clean = write(dir.path(), "clean", &input);
    let out = dir.path().join("out");
    let commands: Vec<Vec<&str>> = vec![
        vec!["check", s(&clean)],
        vec!["dump", "--no-lines", s(&clean)],
        vec!["sort", s(&clean), "-o", s(&out)],
    ];
    for args in &commands {
        let o = tool().args(args).stdout(full()).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?} > /dev/full: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("cannot write to standard output"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // The sort itself was done before its report failed.
    assert!(fs::read(&out).unwrap() == sorted);
    let missing = dir.path().join("missing");
    for cmd in ["check", "sort", "dump"] {
        let o = tool()
            .args([cmd, s(&missing)])
            .stderr(full())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{cmd} 2>/dev/full");
    }
    let o = tool()
        .args(["check", s(&clean)])
        .stdout(full())
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

fn stray_temporaries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| s(p).contains("extable-tmp"))
        .collect()
}

#[test]
fn long_names_and_stale_temporaries() {
    let (input, sorted) = linux_file(0);
    let dir = tempdir();
    let long = "x".repeat(250);
    let path = write(dir.path(), &long, &input);
    let o = run(&["sort", "--atomic", s(&path)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::read(&path).unwrap() == sorted);
    let out = dir.path().join("y".repeat(255));
    let src = write(dir.path(), "src", &input);
    let o = run(&["sort", s(&src), "-o", s(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::read(&out).unwrap() == sorted);
    // What a killed run leaves is removed by the next run for the same file.
    let stale = temporary_name(&out);
    fs::write(&stale, b"left by a killed run").unwrap();
    let o = run(&["sort", s(&src), "-o", s(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stray_temporaries(dir.path()).is_empty());
}

/// kill -9 at several points of an atomic sort of a 96 MiB file: the file is the old one or
/// the sorted one, and after the next run no temporary is left.
#[test]
fn kill_9_during_an_atomic_sort_leaves_no_mixed_file_and_no_temporary() {
    let (input, sorted) = linux_file(96 << 20);
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &input);
    for delay_ms in [0, 2, 5, 10, 20, 40, 80] {
        fs::write(&path, &input).unwrap();
        let mut child = tool()
            .args(["sort", "--atomic", s(&path)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let now = fs::read(&path).unwrap();
        assert!(
            now == input || now == sorted,
            "mixed file after {delay_ms} ms"
        );
        let o = run(&["sort", "--atomic", s(&path)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(
            stray_temporaries(dir.path()).is_empty(),
            "after {delay_ms} ms: {:?}",
            stray_temporaries(dir.path())
        );
        assert!(fs::read(&path).unwrap() == sorted);
    }
}

/// Truncations racing with checks, in-place and atomic sorts of a large file: never a signal,
/// and an error is one line.
#[test]
fn truncation_during_a_sort_is_an_error_not_a_signal() {
    let (input, _) = linux_file(64 << 20);
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &input);
    for (i, delay_us) in [0, 200, 500, 1000, 2000, 5000, 0, 300, 800, 3000]
        .into_iter()
        .enumerate()
    {
        fs::write(&path, &input).unwrap();
        let args: &[&str] = match i % 3 {
            0 => &["check"],
            1 => &["sort"],
            _ => &["sort", "--atomic"],
        };
        let child = tool()
            .args(args)
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(delay_us));
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.signal(), None, "killed by a signal");
        let code = out.status.code().unwrap();
        assert!((0..=2).contains(&code), "exit {code}: {}", stderr(&out));
        if code == 2 {
            assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        }
    }
}

/// A real i386 link with `--emit-relocs` (so it has `.rel__ex_table`), sorted by the
/// sorttable oracle (table sorted, relocations zeroed, marker 0): our sort agrees byte for
/// byte on the shuffled file, and leaves the sorted one alone.
#[test]
fn a_real_i386_link_sorted_by_sorttable_is_left_alone() {
    use common::asm::{self, Arch};
    if !asm::available(Arch::I386) {
        eprintln!("skipping: no i386 toolchain");
        return;
    }
    let dir = tempdir();
    let order = shuffled(&(0..24).collect::<Vec<_>>(), 5);
    let src = asm::source(Arch::I386, Layout::LinuxX86, 24, &order, 1, false);
    fs::write(dir.path().join("x.s"), src).unwrap();
    let ok = std::process::Command::new("as")
        .args(["--32", "-o", "x.o", "x.s"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = std::process::Command::new("ld")
        .args([
            "-m",
            "elf_i386",
            "--emit-relocs",
            "--build-id=none",
            "-o",
            "vmlinux",
            "x.o",
        ])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let path = dir.path().join("vmlinux");
    let shuffled_bytes = fs::read(&path).unwrap();
    let image = object::File::parse(&*shuffled_bytes).unwrap();
    let rel = image.section_by_name(".rel__ex_table");
    let rel = rel.expect("the link has a .rel__ex_table");
    let rel_bytes = rel.data().unwrap();
    assert!(
        rel_bytes.iter().any(|&b| b != 0),
        "its relocations start non-zero"
    );
    let mut linux = shuffled_bytes.clone();
    sorttable(&mut linux, SortKind::RelativeWithData).unwrap();
    // Our sort of the shuffled link is sorttable's.
    let o = run(&["sort", s(&path)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::read(&path).unwrap() == linux, "differs from sorttable");
    // The file sorttable wrote is never rewritten.
    fs::write(&path, &linux).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let before = times(&path);
    for args in [vec!["sort"], vec!["sort", "--atomic"]] {
        let o = run(&[&args[..], &[s(&path)]].concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).contains("file unchanged"), "{}", stdout(&o));
        assert_eq!(times(&path), before, "{args:?} wrote the file");
    }
}

/// The SIGBUS guard covers only the tool's mappings: a fault in another mapping of the same
/// The writes and syncs of an in-place sort of a fresh copy of `input`, as `strace` saw
/// them: `W<offset>` for a `pwrite64` at `offset`, `S` for an `fdatasync` or `fsync`.
fn in_place_syscalls(input: &[u8], extra: &[&str]) -> (Vec<String>, Vec<u8>) {
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", input);
    let trace = dir.path().join("trace");
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=pwrite64,fdatasync,fsync", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_extable-tool"))
        .arg("sort")
        .args(extra)
        .arg(&path)
        .output()
        .expect("strace (Debian package strace) runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let calls = fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let call = l.split_once(' ').map_or(l, |(_, c)| c).trim_start();
            if call.starts_with("fdatasync") || call.starts_with("fsync") {
                return Some("S".to_string());
            }
            // pwrite64(fd, "...", len, offset) = len
            let args = call.strip_prefix("pwrite64(")?.rsplit_once(')')?.0;
            let offset = args.rsplit_once(", ")?.1;
            Some(format!("W{offset}"))
        })
        .collect();
    (calls, fs::read(&path).unwrap())
}

/// Where in the file the value of Linux's sort marker is.
fn marker_file_offset(elf: &[u8]) -> u64 {
    let image = object::File::parse(elf).unwrap();
    let marker = image
        .symbols()
        .find(|s| s.name() == Ok("main_extable_sort_needed"))
        .expect("the marker symbol");
    let section = image
        .section_by_index(marker.section_index().unwrap())
        .unwrap();
    marker.address() - section.address() + section.file_range().unwrap().0
}

/// A table whose marker says sorted while it is not (what a power loss can leave of an
/// unsynced sort) is the one error `check` finds that `sort` cures: in place, the marker is
/// set to "sort needed" before the table is touched and cleared last, so that a sort killed
/// at any point leaves what an interrupted sort does; the result is sorttable's.
#[test]
fn a_table_marked_sorted_that_is_not_is_repaired_with_the_marker_reopened_first() {
    let (input, sorted) = linux_file_marked(0, 0);
    let offset = marker_file_offset(&input);
    assert_eq!(input[offset as usize..][..4], [0; 4]);
    let marker = format!("W{offset}");
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &input);
    let o = run(&["check", s(&path)]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("[unsorted-but-marked]"),
        "{}",
        stdout(&o)
    );
    let o = run(&["sort", s(&path)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: entry") && stderr(&o).contains("sorting repairs it"),
        "{}",
        stderr(&o)
    );
    assert!(fs::read(&path).unwrap() == sorted, "differs from sorttable");
    assert_eq!(code(&run(&["check", s(&path)])), 0);
    // The order of the writes, without and with --sync.
    let (calls, bytes) = in_place_syscalls(&input, &[]);
    assert!(bytes == sorted, "differs from sorttable");
    let n = calls.len();
    assert!(n >= 3, "{calls:?}");
    assert_eq!((&calls[0], &calls[n - 1]), (&marker, &marker), "{calls:?}");
    assert!(calls[1..n - 1].iter().all(|c| *c != marker), "{calls:?}");
    let (calls, bytes) = in_place_syscalls(&input, &["--sync"]);
    assert!(bytes == sorted, "differs from sorttable");
    let n = calls.len();
    assert!(n >= 6, "{calls:?}");
    let s_ = "S".to_string();
    assert_eq!(calls[..2], [marker.clone(), s_.clone()], "{calls:?}");
    assert_eq!(
        calls[n - 3..],
        [s_.clone(), marker.clone(), s_.clone()],
        "{calls:?}"
    );
    assert!(
        calls[2..n - 3].iter().all(|c| *c != s_ && *c != marker),
        "{calls:?}"
    );
    // A new file is written whole: the same bytes.
    let out = dir.path().join("sorted");
    let fresh = write(dir.path(), "again", &input);
    let o = run(&["sort", s(&fresh), "-o", s(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::read(&out).unwrap() == sorted, "differs from sorttable");
    assert!(fs::read(&fresh).unwrap() == input, "-o changed its input");
}

/// Sorting cures only the order: a table marked sorted that is not and that has another
/// error is refused whole, and the file stays as it was.
#[test]
fn a_table_marked_sorted_with_another_error_is_still_refused() {
    let mut specs = shuffled(&sorted_specs(Layout::LinuxX86, 40), 3);
    specs[5].third = ThirdSpec::Data(0xee, 0); // no such fixup type
    let input = Program::new(Layout::LinuxX86, true, false, specs)
        .marker_value(0)
        .build();
    let dir = tempdir();
    let path = write(dir.path(), "vmlinux", &input);
    let o = run(&["sort", s(&path)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("[unknown-type]"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refusing to sort: check found 1 error(s)"),
        "{}",
        stderr(&o)
    );
    assert!(fs::read(&path).unwrap() == input);
}

#[test]
fn in_place_writes_the_marker_last_and_syncs_only_with_sync() {
    let (input, sorted) = linux_file(0);
    let marker = format!("W{}", marker_file_offset(&input));
    // The table and the zeroed relocations, then the marker.
    let (calls, bytes) = in_place_syscalls(&input, &[]);
    assert!(bytes == sorted, "differs from sorttable");
    assert!(calls.len() >= 2, "{calls:?}");
    assert_eq!(calls.last(), Some(&marker), "{calls:?}");
    assert!(
        !calls.contains(&"S".to_string()),
        "synced by default: {calls:?}"
    );
    // --sync: the table is on the disk before the marker is written, the marker after.
    let (calls, bytes) = in_place_syscalls(&input, &["--sync"]);
    assert!(bytes == sorted, "differs from sorttable");
    let n = calls.len();
    assert!(n >= 4, "{calls:?}");
    assert_eq!(
        calls[n - 3..],
        ["S".to_string(), marker.clone(), "S".to_string()]
    );
    assert!(
        calls[..n - 3].iter().all(|c| *c != "S" && *c != marker),
        "{calls:?}"
    );
}
