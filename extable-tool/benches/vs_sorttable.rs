//! Benchmark against Linux's own tool: `extable-tool sort` (in place) and `check` against
//! Linux 6.1's `scripts/sorttable`, on copies of the same shuffled x86-64 vmlinux-sized file
//! (~520 MiB, ~150,000 function symbols, 512 `__ex_table` entries in Linux's 5.16+ layout).
//!
//! `scripts/sorttable` is built here, at bench time: the Debian package `linux-source-6.1`
//! is fetched with `apt-get download`, only `scripts/sorttable.[ch]` and the two byteshift
//! headers it includes are extracted (under `target/sorttable-6.1/`, never committed), and
//! compiled with `gcc` as the kernel's build does (without ORC support, which this file has
//! no table for).
//!
//! Each round restores both copies to the shuffled state (the few changed bytes, synced),
//! then runs, in alternating order, `sorttable A`, `extable-tool sort B` and
//! `extable-tool check B`-like on a third, untouched copy; every ratio is the median over the
//! rounds of the tool's wall time divided by sorttable's in the same round. The outputs of
//! the two sorts are compared byte for byte.
//!
//! Run: `cargo bench -p extable-tool --bench vs_sorttable`
//! (`EXTABLE_BENCH_DIR` chooses where the ~1.6 GB of files go, default `target/`;
//! `EXTABLE_BENCH_ROUNDS` the number of rounds, default 9; `EXTABLE_BENCH_KEEP=FILE` keeps a
//! copy of the shuffled file; `EXTABLE_BENCH_VMLINUX=FILE` runs on a real x86-64 vmlinux
//! of Linux 5.16 or later instead, such as the `vmlinux` of Debian's
//! `linux-image-*-amd64-dbg`, its table shuffled and its marker set here;
//! `EXTABLE_BENCH_TOOL=PROGRAM` runs another build of `extable-tool`, such as a static one.)

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::elfgen::*;
use common::synth::{shuffled, table_bytes, Spec, ThirdSpec};
use extable_tool::Layout;

const TEXT: u64 = 0xffff_ffff_8100_0000;
const FUNCS: u64 = 150_000;
const FUNC: u64 = 0xd00;
const ENTRIES: u64 = 512;
const TOTAL_MIB: usize = 520;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn sh(dir: &Path, script: &str) {
    let ok = Command::new("sh")
        .args(["-ec", script])
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
    assert!(ok.success(), "failed: {script}");
}

/// Linux 6.1's `scripts/sorttable`, built from Debian's `linux-source-6.1` on first use.
fn sorttable() -> PathBuf {
    let dir = target_dir().join("sorttable-6.1");
    let bin = dir.join("sorttable");
    if bin.exists() {
        return bin;
    }
    fs::create_dir_all(&dir).unwrap();
    eprintln!("building scripts/sorttable from Debian's linux-source-6.1 ...");
    sh(
        &dir,
        "apt-get download linux-source-6.1
         src=linux-source-6.1
         dpkg-deb --fsys-tarfile linux-source-6.1_*.deb \
           | tar -xO ./usr/src/$src.tar.xz \
           | tar -xJ $src/scripts/sorttable.c $src/scripts/sorttable.h \
               $src/tools/include/tools/be_byteshift.h $src/tools/include/tools/le_byteshift.h
         rm -f linux-source-6.1_*.deb
         gcc -O2 -I $src/tools/include -o sorttable.tmp $src/scripts/sorttable.c -lpthread
         mv sorttable.tmp sorttable",
    );
    bin
}

/// The vmlinux-sized file: `.text` with `FUNCS` functions, a shuffled `__ex_table` of
/// `ENTRIES` entries (one per spread-out function), the marker set, and padding (the debug
/// sections of a real debug vmlinux) up to `TOTAL_MIB`.
fn vmlinux() -> Vec<u8> {
    let text_size = FUNCS * FUNC;
    let table_addr = TEXT + text_size + 0x10_0000;
    let data_addr = table_addr + 0x10_0000;
    let specs: Vec<Spec> = (0..ENTRIES)
        .map(|i| {
            let func = TEXT + (i * (FUNCS / ENTRIES)) * FUNC;
            Spec {
                insn: func + 0x10,
                fixup: func + FUNC - 0x20,
                third: ThirdSpec::Data(1, 0),
            }
        })
        .collect();
    let table = table_bytes(
        Layout::LinuxX86,
        true,
        false,
        table_addr,
        &shuffled(&specs, 11),
    );
    let mut e = Elf::new(true, false, EM_X86_64);
    let text = e.add_section(Sec::progbits(
        ".text",
        SHF_ALLOC | SHF_EXECINSTR,
        TEXT,
        vec![0xcc; text_size as usize],
    ));
    e.add_section(Sec::progbits("__ex_table", SHF_ALLOC, table_addr, table));
    let data = e.add_section(Sec::progbits(
        ".data",
        SHF_ALLOC | SHF_WRITE,
        data_addr,
        vec![1, 0, 0, 0, 0, 0, 0, 0],
    ));
    let so_far = text_size as usize + (2 << 20) + FUNCS as usize * 40;
    let pad = (TOTAL_MIB << 20).saturating_sub(so_far);
    e.add_section(Sec::progbits(".debug_pad", 0, 0, vec![0x20; pad]));
    for f in 0..FUNCS {
        e.add_symbol(
            &format!("kernel_function_{f}"),
            Some(text),
            TEXT + f * FUNC,
            FUNC,
            STT_FUNC,
        );
    }
    e.add_symbol(
        "main_extable_sort_needed",
        Some(data),
        data_addr,
        4,
        STT_OBJECT,
    );
    e.build()
}

/// A real x86-64 vmlinux (Linux 5.16+ layout: `insn` and `fixup` self-relative, a data
/// word), its `__ex_table` shuffled and `main_extable_sort_needed` set to 1, as a kernel
/// build leaves it before `scripts/sorttable` runs.
fn shuffled_vmlinux(path: &Path) -> Vec<u8> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let mut data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (table, marker) = {
        let file = object::File::parse(&*data).expect("an ELF file");
        assert_eq!(
            file.architecture(),
            object::Architecture::X86_64,
            "an x86-64 vmlinux"
        );
        let table = file
            .section_by_name("__ex_table")
            .expect("a __ex_table section");
        let (offset, size) = table.file_range().expect("__ex_table with file bytes");
        let marker = file
            .symbols()
            .find(|s| s.name() == Ok("main_extable_sort_needed"))
            .expect("a main_extable_sort_needed symbol");
        let section = file
            .section_by_index(marker.section_index().expect("a defined marker"))
            .unwrap();
        let marker = section.file_range().unwrap().0 + (marker.address() - section.address());
        (offset as usize..(offset + size) as usize, marker as usize)
    };
    let entries: Vec<[i32; 3]> = data[table.clone()]
        .chunks_exact(12)
        .map(|e| [0, 4, 8].map(|k| i32::from_le_bytes(e[k..k + 4].try_into().unwrap())))
        .collect();
    // A fixed permutation (an LCG), the same in every run.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    let mut x = 0x2545_f491u64;
    for i in (1..order.len()).rev() {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    for (slot, &from) in order.iter().enumerate() {
        let [insn, fixup, data_word] = entries[from];
        let moved = (from as i64 - slot as i64) as i32 * 12;
        let at = table.start + slot * 12;
        for (k, v) in [insn + moved, fixup + moved, data_word]
            .into_iter()
            .enumerate()
        {
            data[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    data[marker..marker + 4].copy_from_slice(&1u32.to_le_bytes());
    data
}

/// The byte ranges where `a` and `b` differ, merged when close.
fn differing_ranges(a: &[u8], b: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, _) in a.iter().zip(b).enumerate().filter(|(_, (x, y))| x != y) {
        match ranges.last_mut() {
            Some(r) if i <= r.1 + 64 => r.1 = i + 1,
            _ => ranges.push((i, i + 1)),
        }
    }
    ranges
}

/// Put `original`'s bytes back at `ranges` of `path`, durably (so that no sort pays for it).
fn restore(path: &Path, original: &[u8], ranges: &[(usize, usize)]) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    for &(s, e) in ranges {
        f.write_all_at(&original[s..e], s as u64).unwrap();
    }
    f.sync_all().unwrap();
}

fn timed(cmd: &Path, args: &[&Path]) -> Duration {
    let t = Instant::now();
    let out = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        cmd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("EXTABLE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let sorttable = sorttable();
    let tool = std::env::var_os("EXTABLE_BENCH_TOOL")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_extable-tool")));
    let base = std::env::var_os("EXTABLE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(target_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let real = std::env::var_os("EXTABLE_BENCH_VMLINUX").map(PathBuf::from);
    let original = match &real {
        Some(path) => shuffled_vmlinux(path),
        None => vmlinux(),
    };
    if let Some(keep) = std::env::var_os("EXTABLE_BENCH_KEEP") {
        fs::write(keep, &original).unwrap();
    }
    let (linux, ours, checked) = (
        dir.path().join("vmlinux.sorttable"),
        dir.path().join("vmlinux.extable-tool"),
        dir.path().join("vmlinux.check"),
    );
    for p in [&linux, &ours, &checked] {
        fs::write(p, &original).unwrap();
        File::open(p).unwrap().sync_all().unwrap();
    }
    // One sort each, compared byte for byte; the bytes they changed are restored per round.
    timed(&sorttable, &[&linux]);
    timed(&tool, &[Path::new("sort"), &ours]);
    let (a, b) = (fs::read(&linux).unwrap(), fs::read(&ours).unwrap());
    assert!(a == b, "extable-tool's output differs from sorttable's");
    let ranges = differing_ranges(&original, &a);
    drop((a, b));
    let changed: usize = ranges.iter().map(|r| r.1 - r.0).sum();
    let (mut r_sort, mut r_check) = (Vec::new(), Vec::new());
    let (mut t_linux, mut t_sort, mut t_check) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=rounds {
        restore(&linux, &original, &ranges);
        restore(&ours, &original, &ranges);
        let run_linux = || timed(&sorttable, &[&linux]);
        let run_sort = || timed(&tool, &[Path::new("sort"), &ours]);
        let run_check = || timed(&tool, &[Path::new("check"), &checked]);
        let (l, s, c) = if round % 2 == 0 {
            let l = run_linux();
            (l, run_sort(), run_check())
        } else {
            let c = run_check();
            let s = run_sort();
            (run_linux(), s, c)
        };
        if round == 0 {
            continue; // warm-up
        }
        r_sort.push(s.as_secs_f64() / l.as_secs_f64());
        r_check.push(c.as_secs_f64() / l.as_secs_f64());
        t_linux.push(l.as_secs_f64());
        t_sort.push(s.as_secs_f64());
        t_check.push(c.as_secs_f64());
    }
    match &real {
        Some(path) => println!(
            "file: {} ({} MiB, linux-x86 table shuffled); {changed} bytes changed by a sort; \
             both outputs byte-identical",
            path.display(),
            original.len() >> 20
        ),
        None => println!(
            "file: {} MiB, {FUNCS} function symbols, {ENTRIES} entries (linux-x86, \
             shuffled); {changed} bytes changed by a sort; both outputs byte-identical",
            original.len() >> 20
        ),
    }
    println!(
        "medians of {rounds} interleaved rounds; ratio = median of per-round ratios to sorttable"
    );
    println!("extable-tool: {}", tool.display());
    println!(
        "Linux 6.1 scripts/sorttable:      {:>7.2} ms  (baseline)",
        median(t_linux) * 1e3
    );
    println!(
        "extable-tool sort (in place):     {:>7.2} ms  ratio {:.2}  (target <= 1.0)",
        median(t_sort) * 1e3,
        median(r_sort)
    );
    println!(
        "extable-tool check:               {:>7.2} ms  ratio {:.2}  (target <= 1.0)",
        median(t_check) * 1e3,
        median(r_check)
    );
}
