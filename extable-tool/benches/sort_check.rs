//! Benchmark: sort + check of a 10^6-entry table in a ~100 MiB ELF, against reading the whole
//! file once, in the same run. Prints the ratios and the peak RSS of the CLI doing the same.
//! The measures run in interleaved rounds (read, check, sort + check, sort + check + write,
//! then again), so that a machine busy with other work slows them alike; each ratio is the
//! median over the rounds of the measure's time divided by the read's in the same round.
//!
//! Run: `cargo bench -p extable-tool --bench sort_check`
//! (`EXTABLE_BENCH_ENTRIES` and `EXTABLE_BENCH_MIB` change the size.)

#[path = "../tests/common/elfgen.rs"]
mod elfgen;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use elfgen::*;
use extable_tool::{Options, SortTo};

const TEXT: u64 = 0x100_0000;
const FUNC: u64 = 0x1000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A ~`mib` MiB ET_EXEC with `n` shuffled entries of this project's layout.
fn build(n: usize, mib: usize) -> Vec<u8> {
    let table_bytes = n * 12;
    let text_size = (mib << 20)
        .saturating_sub(table_bytes + (4 << 20))
        .max(1 << 20) as u64
        & !(FUNC - 1);
    let funcs = text_size / FUNC;
    let table_addr = TEXT + text_size + 0x10000;
    let handlers = [TEXT, TEXT + FUNC];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Distinct instructions spread over the text, then shuffled into table order.
    let step = ((text_size - 2 * FUNC) / n as u64).max(4) & !3;
    let mut insns: Vec<u64> = (0..n as u64).map(|i| TEXT + 2 * FUNC + i * step).collect();
    for i in (1..n).rev() {
        insns.swap(i, (rnd() % (i as u64 + 1)) as usize);
    }
    let mut table = Vec::with_capacity(table_bytes);
    for (i, &insn) in insns.iter().enumerate() {
        let fixup = (insn & !(FUNC - 1)) + FUNC - 0x10;
        let at = table_addr + (i * 12) as u64;
        for (k, target) in [insn, fixup, handlers[i % 2]].into_iter().enumerate() {
            table.extend_from_slice(&(target.wrapping_sub(at + 4 * k as u64) as u32).to_le_bytes());
        }
    }
    let mut e = Elf::new(true, false, EM_X86_64);
    let text = e.add_section(Sec {
        nobits_size: 0,
        ..Sec::progbits(
            ".text",
            SHF_ALLOC | SHF_EXECINSTR,
            TEXT,
            vec![0xcc; text_size as usize],
        )
    });
    let mut t = Sec::progbits("__ex_table", SHF_ALLOC, table_addr, table);
    t.align = 4;
    e.add_section(t);
    let data = e.add_section(Sec::progbits(
        ".data",
        SHF_ALLOC | SHF_WRITE,
        table_addr + table_bytes as u64 + 0x1000,
        vec![1, 0, 0, 0],
    ));
    let pad = (mib << 20)
        .saturating_sub(e.sections.iter().map(|s| s.data.len()).sum::<usize>() + (2 << 20));
    e.add_section(Sec::progbits(".comment.pad", 0, 0, vec![0x20; pad]));
    for f in 0..funcs {
        e.add_symbol(
            &format!("fn_{f}"),
            Some(text),
            TEXT + f * FUNC,
            FUNC,
            STT_FUNC,
        );
    }
    e.add_symbol(
        "extable_main_sort_needed",
        Some(data),
        table_addr + table_bytes as u64 + 0x1000,
        4,
        STT_OBJECT,
    );
    e.build()
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// Run each of `measures` once per round, in turn, for `rounds` rounds after one warm-up
/// round (so that a busy machine slows all of them alike). Returns each one's median time
/// and the median over the rounds of its time divided by the first measure's.
fn interleaved(rounds: usize, measures: &mut [&mut dyn FnMut() -> usize]) -> Vec<(Duration, f64)> {
    let mut times = vec![Vec::new(); measures.len()];
    for round in 0..=rounds {
        for (k, f) in measures.iter_mut().enumerate() {
            let t = Instant::now();
            std::hint::black_box(f());
            if round > 0 {
                times[k].push(t.elapsed());
            }
        }
    }
    let base = times[0].clone();
    times
        .into_iter()
        .map(|ts| {
            let ratios = ts
                .iter()
                .zip(&base)
                .map(|(t, b)| t.as_secs_f64() / b.as_secs_f64())
                .collect();
            (median(ts), median(ratios))
        })
        .collect()
}

/// Run the CLI as a child of a fresh, small copy of this bench (so that the peak RSS the
/// kernel reports is the tool's, not inherited from this big process at fork), and return
/// (wall time, peak RSS in KiB).
fn child(args: &[&str]) -> (Duration, i64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--measure-child")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<i64>().unwrap());
    (
        Duration::from_nanos(it.next().unwrap() as u64),
        it.next().unwrap(),
    )
}

/// The `--measure-child` mode: spawn the tool, wait4 it, print "nanos maxrss_kib".
fn measure_child(args: &[String]) {
    let (t, rss) = spawn_and_wait(args);
    println!("{} {}", t.as_nanos(), rss);
}

// The child is reaped by `wait4` (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn spawn_and_wait(args: &[String]) -> (Duration, i64) {
    let t = Instant::now();
    let c = Command::new(env!("CARGO_BIN_EXE_extable-tool"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which std has not reaped.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; the pid is our child.
    let r = unsafe { libc::wait4(c.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(r, c.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} failed"
    );
    (t.elapsed(), ru.ru_maxrss)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if args.get(1).map(String::as_str) == Some("--measure-child") {
        return measure_child(&args[2..]);
    }
    let n = env_usize("EXTABLE_BENCH_ENTRIES", 1_000_000);
    let mib = env_usize("EXTABLE_BENCH_MIB", 100);
    let dir = tempfile::tempdir_in(
        std::env::var("EXTABLE_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    let path = dir.path().join("big.elf");
    std::fs::write(&path, build(n, mib)).unwrap();
    if let Ok(keep) = std::env::var("EXTABLE_BENCH_KEEP") {
        std::fs::copy(&path, keep).unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let out = dir.path().join("sorted.elf");
    let p = path.as_path();
    // The table rules alone; the instruction-level rules, which decode every function
    // that contains an entry (here all 94 MiB of one-byte instructions), are measured
    // apart.
    let opts = Options {
        no_instructions: true,
        ..Options::default()
    };
    let all_rules = Options::default();
    let rounds = 9;
    // Warm the page cache, then measure.
    let _ = std::fs::read(p).unwrap();
    let mut read_all = || std::fs::read(p).unwrap().len();
    let mut check_only = || extable_tool::check_file(p, &opts).unwrap().entries;
    let mut check_insns = || extable_tool::check_file(p, &all_rules).unwrap().entries;
    let mut sort_check = || {
        extable_tool::sort_file_to(p, SortTo::DryRun, &opts)
            .unwrap()
            .moved
    };
    let mut sort_write = || {
        extable_tool::sort_file(p, Some(out.as_path()), &opts)
            .unwrap()
            .moved
    };
    let m = interleaved(
        rounds,
        &mut [
            &mut read_all,
            &mut check_only,
            &mut sort_check,
            &mut sort_write,
            &mut check_insns,
        ],
    );
    let [(read_all, _), (check_only, r_check), (sort_check, r_sort), (sort_write, r_write), (check_insns, r_insns)] =
        m[..]
    else {
        unreachable!("five measures")
    };
    let report = extable_tool::check_file(&out, &opts).unwrap();
    assert!(report.sorted && !report.has_errors());
    println!(
        "file: {} MiB, {} entries (shuffled), {} errors; medians of {rounds} interleaved rounds, \
         ratio = median of the per-round ratios",
        size >> 20,
        n,
        report.errors
    );
    println!(
        "read whole file once (fs::read):       {:>8.1} ms  (baseline)",
        read_all.as_secs_f64() * 1e3
    );
    println!(
        "check (mmap; headers, symtab, table):  {:>8.1} ms  ratio {:.3}",
        check_only.as_secs_f64() * 1e3,
        r_check
    );
    println!(
        "check + instruction rules (decode all): {:>7.1} ms  ratio {:.3}",
        check_insns.as_secs_f64() * 1e3,
        r_insns
    );
    println!(
        "sort + check, bytes planned (no write): {:>7.1} ms  ratio {:.3}  (target < 0.5)",
        sort_check.as_secs_f64() * 1e3,
        r_sort
    );
    println!(
        "sort + check + atomic write of a copy: {:>8.1} ms  ratio {:.3}  (copies the whole file + fsync)",
        sort_write.as_secs_f64() * 1e3,
        r_write
    );
    let file = path.to_str().unwrap();
    let (t_check, rss_check) = child(&["check", "--no-instructions", file]);
    let (t_insns, rss_insns) = child(&["check", file]);
    let (t_sort, rss_sort) = child(&[
        "sort",
        "--no-instructions",
        file,
        "-o",
        out.to_str().unwrap(),
    ]);
    println!(
        "CLI check --no-instructions: {:>7.1} ms, peak RSS {:>6} MiB ({:.0}% of the file)",
        t_check.as_secs_f64() * 1e3,
        rss_check >> 10,
        100.0 * (rss_check as f64 * 1024.0) / size as f64
    );
    println!(
        "CLI check:                   {:>7.1} ms, peak RSS {:>6} MiB ({:.0}% of the file)",
        t_insns.as_secs_f64() * 1e3,
        rss_insns >> 10,
        100.0 * (rss_insns as f64 * 1024.0) / size as f64
    );
    println!(
        "CLI sort --no-instructions -o: {:>5.1} ms, peak RSS {:>6} MiB ({:.0}% of the file)",
        t_sort.as_secs_f64() * 1e3,
        rss_sort >> 10,
        100.0 * (rss_sort as f64 * 1024.0) / size as f64
    );
    let _ = Path::new(&out);
}
