//! Benchmark: `extable-tool dump` with DWARF file:line for 10^4 entries, against binutils
//! `addr2line -f` resolving the same addresses (every insn, fixup and handler the dump
//! resolves), in the same run. Both run as processes on the same file; medians are printed
//! with the ratio (target: within 2x).
//!
//! Run: `cargo bench -p extable-tool --bench dump_lines` (needs gcc and addr2line).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 10_000;

fn source(n: usize) -> String {
    let mut s = String::from(
        ".text\n.globl _start\n.type _start, @function\n_start:\n  nop\n.size _start, .-_start\n",
    );
    for k in 0..n {
        writeln!(s, ".globl f{k}\n.type f{k}, @function\nf{k}:\n  nop\n.Li{k}:\n  movq (%rdi), %rax\n  nop\n.Lf{k}:\n  ret\n.size f{k}, .-f{k}").unwrap();
    }
    s += ".globl h\n.type h, @function\nh:\n  ret\n.size h, .-h\n.section __ex_table,\"a\"\n.balign 4\n";
    for k in (0..n).rev() {
        writeln!(s, ".long .Li{k} - .\n.long .Lf{k} - .\n.long h - .").unwrap();
    }
    s += ".data\n.globl extable_main_sort_needed\n.type extable_main_sort_needed, @object\n.size extable_main_sort_needed, 4\nextable_main_sort_needed:\n.long 1\n";
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.s"), source(N)).unwrap();
    let ok = Command::new("gcc")
        .args(["-g", "-nostdlib", "-static", "-no-pie", "-o", "k", "x.s"])
        .current_dir(dir.path())
        .status()
        .expect("gcc");
    assert!(ok.success());
    let elf = dir.path().join("k");
    let tool = env!("CARGO_BIN_EXE_extable-tool");
    // The addresses the dump resolves, from its own JSON output.
    let json = Command::new(tool)
        .arg("dump")
        .arg(&elf)
        .args(["--format", "json", "--no-lines"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut addrs = String::new();
    for e in v["entries"].as_array().unwrap() {
        for role in ["insn", "fixup", "handler"] {
            writeln!(addrs, "{:#x}", e[role]["addr"].as_u64().unwrap()).unwrap();
        }
    }
    let lookups = addrs.lines().count();
    let run_dump = || {
        let t = Instant::now();
        let out = Command::new(tool).arg("dump").arg(&elf).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("x.s:"));
        t.elapsed()
    };
    let run_a2l = || {
        let t = Instant::now();
        let mut c = Command::new("addr2line")
            .arg("-f")
            .arg("-e")
            .arg(&elf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Feed stdin from a thread: addr2line answers while it reads, and a full stdout
        // pipe would otherwise block both sides.
        let mut stdin = c.stdin.take().unwrap();
        let input = addrs.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
        let out = c.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("x.s:"));
        t.elapsed()
    };
    let (mut d, mut a) = (vec![], vec![]);
    for _ in 0..7 {
        d.push(run_dump());
        a.push(run_a2l());
    }
    let (d, a) = (median(d), median(a));
    println!("{N} entries, {lookups} addresses resolved to function/symbol and file:line");
    println!("extable-tool dump:   {:>8.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "addr2line -f:        {:>8.1} ms  (baseline)",
        a.as_secs_f64() * 1e3
    );
    println!(
        "ratio dump/addr2line: {:.2}  (target <= 2)",
        d.as_secs_f64() / a.as_secs_f64()
    );
}
