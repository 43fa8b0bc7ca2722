//! Lookup benchmark (criterion): `search` (branchless, prefetching) against a faithful port of
//! Linux's `lib/extable.c` + `lib/bsearch.c` (`search_linux`), on sorted tables of 10^3 to
//! 10^6 entries, in the same run. After criterion's report it prints a table of the median
//! times per lookup and the speed-up ratio, read from criterion's own estimates.
//!
//! Run: `cargo bench -p extable-runtime --bench lookup`

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput};
use extable_runtime::entry::{ExceptionTableEntry, Targets, ENTRY_SIZE};
use extable_runtime::search::{search, search_linux};

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
const QUERIES: usize = 4096;
const GROUP: &str = "lookup";

/// A small deterministic generator (xorshift64*), so every run measures the same tables.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A sorted table of `n` entries whose instructions lie 4 to 64 bytes apart, as in a kernel,
/// and random queries: hits, with 1 in 8 a miss between two instructions.
fn workload(n: usize, rng: &mut Rng) -> (Vec<ExceptionTableEntry>, Vec<usize>) {
    let mut table: Vec<ExceptionTableEntry> = (0..n)
        .map(|_| ExceptionTableEntry {
            insn: 0,
            fixup: 0,
            handler: 0,
        })
        .collect();
    let base = table.as_ptr() as usize;
    let mut insn = base.wrapping_sub(64 << 20);
    let mut insns = Vec::with_capacity(n);
    for (i, slot) in table.iter_mut().enumerate() {
        insn += 4 + (rng.next() % 61) as usize;
        insns.push(insn);
        let t = Targets {
            insn,
            fixup: insn + 2,
            handler: base,
        };
        let [insn, fixup, handler] =
            ExceptionTableEntry::encode(base + i * ENTRY_SIZE, t).expect("in reach");
        *slot = ExceptionTableEntry {
            insn,
            fixup,
            handler,
        };
    }
    let queries = (0..QUERIES)
        .map(|i| {
            let insn = insns[(rng.next() % n as u64) as usize];
            if i % 8 == 0 {
                insn + 1
            } else {
                insn
            }
        })
        .collect();
    (table, queries)
}

type Lookup = for<'a> fn(&'a [ExceptionTableEntry], usize) -> Option<&'a ExceptionTableEntry>;

fn run_all(table: &[ExceptionTableEntry], queries: &[usize], lookup: Lookup) -> usize {
    queries
        .iter()
        .filter(|&&q| lookup(black_box(table), black_box(q)).is_some())
        .count()
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(QUERIES as u64));
    for n in SIZES {
        let (table, queries) = workload(n, &mut rng);
        assert_eq!(
            run_all(&table, &queries, search),
            run_all(&table, &queries, search_linux)
        );
        group.bench_with_input(BenchmarkId::new("linux", n), &n, |b, _| {
            b.iter(|| run_all(&table, &queries, search_linux))
        });
        group.bench_with_input(BenchmarkId::new("extable", n), &n, |b, _| {
            b.iter(|| run_all(&table, &queries, search))
        });
    }
    group.finish();
}

/// Criterion's median estimate (ns per iteration) for one benchmark of this run.
fn median_ns(dir: &Path, function: &str, n: usize) -> Option<f64> {
    let path = dir
        .join(GROUP)
        .join(function)
        .join(n.to_string())
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    let dir = criterion_dir();
    println!(
        "\n{:>9} {:>14} {:>14} {:>8}",
        "entries", "linux ns/op", "extable ns/op", "speedup"
    );
    for n in SIZES {
        let (Some(l), Some(f)) = (median_ns(&dir, "linux", n), median_ns(&dir, "extable", n))
        else {
            continue; // not measured in this run (e.g. a filter, or `cargo test --benches`)
        };
        let per = |ns: f64| ns / QUERIES as f64;
        println!("{n:>9} {:>14.1} {:>14.1} {:>7.2}x", per(l), per(f), l / f);
    }
}
