//! Lookup benchmark: `search` (branchless, prefetching) against a faithful port of Linux's
//! `lib/extable.c` + `lib/bsearch.c` (`search_linux`), on sorted tables of 10^3 to 10^6
//! entries, in the same run. Prints ns per lookup and the speed-up ratio.
//!
//! Run: `cargo bench -p extable-runtime --bench lookup`

use std::hint::black_box;
use std::time::{Duration, Instant};

use extable_runtime::entry::{ExceptionTableEntry, Targets, ENTRY_SIZE};
use extable_runtime::search::{search, search_linux};

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

/// A sorted table of `n` entries whose instructions lie 4 to 64 bytes apart, as in a kernel.
fn sorted_table(n: usize, rng: &mut Rng) -> (Vec<ExceptionTableEntry>, Vec<usize>) {
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
    (table, insns)
}

/// Time one pass of `lookup` over all queries.
fn pass(
    table: &[ExceptionTableEntry],
    queries: &[usize],
    lookup: fn(&[ExceptionTableEntry], usize) -> Option<&ExceptionTableEntry>,
) -> Duration {
    let start = Instant::now();
    let mut found = 0usize;
    for &q in queries {
        found += lookup(black_box(table), black_box(q)).is_some() as usize;
    }
    black_box(found);
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { 31 };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!(
        "{:>9} {:>14} {:>14} {:>8}",
        "entries", "linux ns/op", "extable ns/op", "speedup"
    );
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let (table, insns) = sorted_table(n, &mut rng);
        // Random hits plus 1 in 8 misses (an address between two instructions).
        let queries: Vec<usize> = (0..(1 << 16))
            .map(|i| {
                let insn = insns[(rng.next() % n as u64) as usize];
                if i % 8 == 0 {
                    insn + 1
                } else {
                    insn
                }
            })
            .collect();
        for &q in queries.iter().take(1024) {
            assert_eq!(
                search(&table, q).map(|e| e.insn_addr()),
                search_linux(&table, q).map(|e| e.insn_addr())
            );
        }
        let (mut fast, mut linux) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            linux.push(pass(&table, &queries, search_linux));
            fast.push(pass(&table, &queries, search));
        }
        let per_op = |d: Duration| d.as_secs_f64() * 1e9 / queries.len() as f64;
        let (f, l) = (per_op(median(fast)), per_op(median(linux)));
        println!("{n:>9} {l:>14.1} {f:>14.1} {:>7.2}x", l / f);
    }
}
