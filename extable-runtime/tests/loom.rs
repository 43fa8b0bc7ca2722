//! Model check of the module-table read/retire protocol with `loom`: every interleaving (up to
//! the preemption bound) of lookups against register, trim, unregister and the reuse of the
//! table's memory.
//!
//! Run with `cargo test -p extable-runtime --features loom --release --test loom`. A lookup
//! checks, inside its read section, that the table it is reading has not been retired: the
//! retiring thread sets a flag right after `unregister` returns, where a kernel would free
//! the memory. A protocol that let `unregister` return while a reader is still inside would
//! let some interleaving read the flag set.
#![cfg(feature = "loom")]

use std::sync::OnceLock;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;

use extable_runtime::entry::{ExceptionTableEntry, Targets, ENTRY_SIZE};
use extable_runtime::table::{Module, Registry};

/// Entries per table; the last one is in the init code.
const LEN: usize = 3;

/// Two tables with the same instructions and different fixups: the first load and the reuse.
struct Tables {
    base: usize,
    a: usize,
    b: usize,
}

impl Tables {
    fn insn(&self, k: usize) -> usize {
        self.base + 0x100 * k
    }

    fn fixup(&self, table: usize, k: usize) -> usize {
        self.base + 0x10_000 * (1 + usize::from(table == self.b)) + k
    }

    fn init(&self) -> std::ops::Range<usize> {
        self.insn(LEN - 1)..self.insn(LEN)
    }

    /// Which table `entry` lives in.
    fn owner(&self, entry: &ExceptionTableEntry) -> usize {
        let at = entry as *const ExceptionTableEntry as usize;
        if (self.a..self.a + LEN * ENTRY_SIZE).contains(&at) {
            self.a
        } else {
            assert!((self.b..self.b + LEN * ENTRY_SIZE).contains(&at));
            self.b
        }
    }

    fn slice(&self, table: usize) -> &'static mut [ExceptionTableEntry] {
        // SAFETY: `table` is one of the two leaked tables; the protocol under test (and the
        // checks of this file) keep lookups out of it while it is loaded.
        unsafe { std::slice::from_raw_parts_mut(table as *mut ExceptionTableEntry, LEN) }
    }
}

fn encode(table: &mut [ExceptionTableEntry], targets: impl Fn(usize) -> Targets) {
    let base = table.as_ptr() as usize;
    for (i, slot) in table.iter_mut().enumerate() {
        let [insn, fixup, handler] =
            ExceptionTableEntry::encode(base + i * ENTRY_SIZE, targets(i)).expect("in reach");
        *slot = ExceptionTableEntry {
            insn,
            fixup,
            handler,
        };
    }
}

/// The tables, built once (plain memory: loom only needs to see the protocol's atomics).
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let empty = || ExceptionTableEntry {
            insn: 0,
            fixup: 0,
            handler: 0,
        };
        let a: &'static mut [ExceptionTableEntry] = Box::leak(
            (0..LEN)
                .map(|_| empty())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let b: &'static mut [ExceptionTableEntry] = Box::leak(
            (0..LEN)
                .map(|_| empty())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let t = Tables {
            base: a.as_ptr() as usize + 0x100_0000,
            a: a.as_ptr() as usize,
            b: b.as_ptr() as usize,
        };
        for table in [t.a, t.b] {
            encode(t.slice(table), |k| Targets {
                insn: t.insn(k),
                fixup: t.fixup(table, k),
                handler: t.base,
            });
        }
        t
    })
}

/// One lookup of entry `k`, checked inside the read section: the table is live and the
/// entry is the one loaded for `k`.
fn lookup(registry: &Registry<2>, retired_a: &AtomicBool, k: usize) -> Option<usize> {
    let t = tables();
    registry.with_entry(t.insn(k), |entry| {
        let owner = t.owner(entry);
        if owner == t.a {
            assert!(
                !retired_a.load(Ordering::Relaxed),
                "a lookup read a table after unregister returned"
            );
        }
        assert_eq!(entry.insn_addr(), t.insn(k));
        assert_eq!(
            entry.fixup_addr(),
            t.fixup(owner, k),
            "entry of another slot"
        );
        owner
    })
}

/// A model checker exploring every interleaving (`None`) or those with at most `bound`
/// preemptions.
fn builder(bound: Option<usize>) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = bound;
    b
}

/// Readers against trim, unregister, and the reload of the module with the other table into
/// the freed slot: one reader over every interleaving.
#[test]
fn lookups_never_see_a_retired_table() {
    retire_and_reuse(builder(None), &[[0, LEN - 1]]);
}

/// The same with two readers, up to three preemptions (every interleaving would take hours).
#[test]
fn two_readers_never_see_a_retired_table() {
    retire_and_reuse(builder(Some(3)), &[[0, LEN - 1], [LEN - 1, 1]]);
}

fn retire_and_reuse(builder: loom::model::Builder, keys: &'static [[usize; 2]]) {
    builder.check(move || {
        let t = tables();
        let registry: &'static Registry<2> = Box::leak(Box::new(Registry::new()));
        let module: &'static Module = Box::leak(Box::new(Module::new("m")));
        let retired_a = Arc::new(AtomicBool::new(false));
        // SAFETY: not registered; table A stays valid until it is retired below.
        unsafe { module.load(t.slice(t.a), t.init()) };
        registry.register(module).unwrap();

        let readers: Vec<_> = keys
            .iter()
            .map(|&keys| {
                let retired_a = retired_a.clone();
                loom::thread::spawn(move || {
                    for k in keys {
                        lookup(registry, &retired_a, k);
                    }
                })
            })
            .collect();

        // SAFETY: table A is live until it is retired below, on this thread.
        assert_eq!(unsafe { module.trim_init() }, 1);
        registry.unregister(module);
        retired_a.store(true, Ordering::Relaxed);
        // SAFETY: unregistered; table B is valid for the rest of the run.
        unsafe { module.load(t.slice(t.b), t.init()) };
        registry.register(module).unwrap();
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(lookup(registry, &retired_a, 0), Some(t.b));
    });
}

/// Registration racing a lookup: the lookup finds nothing or the complete entry.
#[test]
fn a_lookup_racing_register_sees_nothing_or_the_whole_table() {
    builder(None).check(|| {
        let t = tables();
        let registry: &'static Registry<2> = Box::leak(Box::new(Registry::new()));
        let module: &'static Module = Box::leak(Box::new(Module::new("m")));
        let retired_a = Arc::new(AtomicBool::new(false));
        // SAFETY: not registered; table A stays valid for the whole run.
        unsafe { module.load(t.slice(t.a), t.init()) };
        let reader = {
            let retired_a = retired_a.clone();
            loom::thread::spawn(move || lookup(registry, &retired_a, 1))
        };
        registry.register(module).unwrap();
        let seen = reader.join().unwrap();
        assert!(seen.is_none() || seen == Some(t.a));
        assert_eq!(lookup(registry, &retired_a, 1), Some(t.a));
    });
}

/// Two modules in two slots, one retired while a lookup walks both: the other stays found.
#[test]
fn retiring_one_module_does_not_hide_another() {
    builder(None).check(|| {
        let t = tables();
        let registry: &'static Registry<2> = Box::leak(Box::new(Registry::new()));
        let first: &'static Module = Box::leak(Box::new(Module::new("first")));
        let second: &'static Module = Box::leak(Box::new(Module::new("second")));
        let retired_a = Arc::new(AtomicBool::new(false));
        // SAFETY: neither is registered; both tables stay valid for the checks below.
        unsafe {
            first.load(t.slice(t.a), 0..0);
            second.load(t.slice(t.b), 0..0);
        }
        registry.register(first).unwrap();
        registry.register(second).unwrap();
        let reader = {
            let retired_a = retired_a.clone();
            loom::thread::spawn(move || lookup(registry, &retired_a, 0))
        };
        registry.unregister(first);
        retired_a.store(true, Ordering::Relaxed);
        let seen = reader.join().unwrap();
        assert!(seen.is_some(), "the second module is registered throughout");
    });
}
