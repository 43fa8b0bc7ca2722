//! `smp_fixups`: every CPU at once takes fixable faults through its own recursion guard,
//! while the boot CPU loads, trims and unloads a module table and the others look its
//! entries up.
//!
//! First every CPU takes one fault whose handler ([`hold_in_fixup`]) keeps it inside the
//! fixup path until all CPUs are there: faults being fixed on every CPU at the same moment,
//! which a recursion guard shared by the CPUs would take for a fault inside a handler. Each
//! CPU checks it runs with the boot CPU's protections against kernel access to user memory
//! ([`Arch::user_access_protected`]).
//!
//! Then each CPU builds its own user address space, enters user mode once (a store and a
//! load by the user task, served by a demand-zero fault on that CPU), then loops: a
//! `copy_from_kernel_nofault` of two bad addresses (must return `Efault`) and a
//! `copy_from_user` of 256 bytes that runs off the end of a mapped page into an unmapped one
//! (must return exactly the bytes not copied, with the copied ones right), until the arch has
//! counted [`FAULTS_PER_CPU`] memory faults on that CPU. Every CPU but the boot one also
//! looks each of the module's entries up once a round: each lookup must find the right entry
//! or none. The boot CPU, between its own faults, runs [`module_cycle`], and goes on until
//! every other CPU is done.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use extable_runtime::entry::Targets;
use extable_runtime::table::{register_module, unregister_module, Module};
use extable_runtime::{search_exception_tables, ExceptionTableEntry};

use crate::arch::{user_op, Arch, Current};
use crate::mm::Mm;
use crate::percpu::{self, MAX_CPUS};
use crate::report::Detail;
use crate::task::{self, Exit};
use crate::uaccess::{self, copy_from_kernel_nofault, Efault};

/// Memory faults each CPU must take (and have fixed).
const FAULTS_PER_CPU: usize = 10_000;
/// An upper bound on each CPU's loop, whatever the fault count says.
const MAX_ROUNDS: usize = 20_000;
/// How long the boot CPU waits for the others to finish, in microseconds.
const WAIT_US: u64 = 5_000_000;
/// The bytes the partial copies ask for.
const COPY_LEN: usize = 256;
/// How many bytes of the mapped page each copy starts at (one per round, in turn).
const INSIDE: [usize; 4] = [1, 7, 100, 255];
/// The bad kernel-probe addresses (seed 001's NULL and 0x880).
const PROBES: [usize; 2] = [0, 0x880];

/// Entries in the module table; the first [`MODULE_INIT`] cover its init code.
const MODULE_ENTRIES: usize = 16;
/// Entries trimmed with the init code.
const MODULE_INIT: usize = 4;

/// What one CPU counted.
struct Tally {
    /// Memory faults the arch counted on this CPU during the run.
    faults: AtomicUsize,
    /// Outcomes that were not the expected ones.
    wrong: AtomicUsize,
    /// Module lookups made.
    lookups: AtomicUsize,
    /// Module lookups that found an entry (the others found none).
    found: AtomicUsize,
    /// The CPU's [`hold_in_fixup`] load was fixed while every CPU was in the fixup path.
    held: AtomicBool,
    /// The CPU finished its loop.
    done: AtomicBool,
}

static TALLY: [Tally; MAX_CPUS] = [const {
    Tally {
        faults: AtomicUsize::new(0),
        wrong: AtomicUsize::new(0),
        lookups: AtomicUsize::new(0),
        found: AtomicUsize::new(0),
        held: AtomicBool::new(false),
        done: AtomicBool::new(false),
    }
}; MAX_CPUS];

/// The address [`Arch::load_held_in_fixup`] loads (unmapped on every arch).
const HOLD_ADDR: usize = 0x880;
/// How long [`hold_in_fixup`] waits for the other CPUs, in microseconds.
const HOLD_US: u64 = 2_000_000;
/// CPUs that entered [`hold_in_fixup`] (one fault per CPU, once per boot).
static HELD: AtomicUsize = AtomicUsize::new(0);
/// How many CPUs [`hold_in_fixup`] waits for (set before [`GO`]).
static HOLD_FOR: AtomicUsize = AtomicUsize::new(0);

/// An exception-table handler (of [`Arch::load_held_in_fixup`]'s load) that keeps this CPU
/// inside the fixup path, its recursion guard held, until every CPU online is inside too
/// (at most [`HOLD_US`]), then resumes at the fixup as the default handler does. Records in
/// this CPU's tally whether all CPUs were there.
pub fn hold_in_fixup(
    entry: &ExceptionTableEntry,
    regs: &mut dyn extable_runtime::ExRegs,
    trap: &extable_runtime::Trap,
) -> bool {
    HELD.fetch_add(1, Ordering::AcqRel);
    let want = HOLD_FOR.load(Ordering::Acquire);
    let start = Current::now_us();
    while HELD.load(Ordering::Acquire) < want && Current::now_us() - start < HOLD_US {
        core::hint::spin_loop();
    }
    let all_there = HELD.load(Ordering::Acquire) >= want;
    TALLY[Current::cpu_id()]
        .held
        .store(all_there, Ordering::Release);
    extable_runtime::handlers::default(entry, regs, trap)
}

/// Define `load_held_in_fixup(addr: usize) -> bool` for [`Arch::load_held_in_fixup`]: the
/// arch's load instruction `$insn` (operands `{v}` loaded, `{a}` the address) under a table
/// entry with [`hold_in_fixup`] as its handler.
macro_rules! load_held_in_fixup {
    ($insn:literal) => {
        /// A kernel load of `addr` (which must fault) whose entry has
        /// [`crate::scenarios::hold_in_fixup`] as its handler: `true` when it faulted and was
        /// fixed.
        pub fn load_held_in_fixup(addr: usize) -> bool {
            let v: usize;
            // SAFETY: the load faults (nothing is mapped at `addr`); its entry resumes after
            // the block. It reads nothing Rust owns.
            let r = unsafe {
                extable_runtime::asm!(
                    $insn,
                    a = in(reg) addr,
                    v = out(reg) v,
                    handler = crate::scenarios::hold_in_fixup,
                    options(nostack),
                )
            };
            let _ = v;
            r.is_err()
        }
    };
}
pub(crate) use load_held_in_fixup;

/// Set once every CPU is up: they all start their loops together.
static GO: AtomicBool = AtomicBool::new(false);
/// Module cycles the boot CPU completed.
static CYCLES: AtomicUsize = AtomicUsize::new(0);

/// The scenario (runs on the boot CPU, which starts the others).
pub fn smp_fixups(d: &mut Detail) -> bool {
    let recursive_before = crate::console::fatal_reports();
    let cpus = Current::start_secondaries(secondary);
    HOLD_FOR.store(cpus, Ordering::Release);
    GO.store(true, Ordering::Release);
    run_cpu(0, cpus);
    let start = Current::now_us();
    let all_done = |n| (0..n).all(|c: usize| TALLY[c].done.load(Ordering::Acquire));
    while !all_done(cpus) && Current::now_us() - start < WAIT_US {
        core::hint::spin_loop();
    }
    let recursive = crate::console::fatal_reports() - recursive_before;
    report(d, cpus, all_done(cpus), recursive)
}

/// What each started CPU runs.
fn secondary(cpu: usize) {
    while !GO.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    run_cpu(cpu, 0);
}

/// Print the result detail; `true` for PASS.
fn report(d: &mut Detail, cpus: usize, finished: bool, recursive: usize) -> bool {
    let _ = write!(d, "cpus={} faults=", cpus);
    let mut pass = finished && recursive == 0 && cpus >= 1;
    let mut wrong = 0;
    let mut lookups = 0;
    let mut found = 0;
    let mut held = 0;
    for (c, t) in TALLY.iter().enumerate().take(cpus) {
        held += usize::from(t.held.load(Ordering::Acquire));
        let faults = t.faults.load(Ordering::Acquire);
        pass &= faults >= FAULTS_PER_CPU;
        wrong += t.wrong.load(Ordering::Acquire);
        lookups += t.lookups.load(Ordering::Acquire);
        found += t.found.load(Ordering::Acquire);
        let _ = write!(d, "{}{}", if c == 0 { "" } else { "," }, faults);
    }
    let cycles = CYCLES.load(Ordering::Acquire);
    pass &= wrong == 0 && cycles > 0 && held == cpus;
    let _ = write!(
        d,
        " held={} wrong={} recursive={} module_cycles={} lookups={} found={}{}",
        held,
        wrong,
        recursive,
        cycles,
        lookups,
        found,
        if finished {
            ""
        } else {
            " (a CPU did not finish)"
        }
    );
    pass
}

/// One CPU's part, in an address space of its own. The boot CPU (of `cpus` online) cycles
/// the module tables until the others are done; the others look their entries up.
fn run_cpu(cpu: usize, cpus: usize) {
    let tally = &TALLY[cpu];
    if !Current::load_held_in_fixup(HOLD_ADDR) {
        tally.held.store(false, Ordering::Release);
    }
    if !Current::user_access_protected() {
        tally.wrong.fetch_add(1, Ordering::Relaxed);
    }
    match task::new_mm() {
        Some(mut mm) => {
            if !user_round_trip(&mut mm) {
                tally.wrong.fetch_add(1, Ordering::Relaxed);
            }
            task::with_mm(&mut mm, || fault_loop(tally, cpu == 0, cpus));
        }
        None => {
            tally.wrong.fetch_add(1, Ordering::Relaxed);
        }
    }
    tally.done.store(true, Ordering::Release);
}

/// Enter user mode on this CPU: the task stores a byte in its (demand-zero) data area and
/// loads it back, then exits with it.
fn user_round_trip(mm: &mut Mm) -> bool {
    let l = Current::user_layout();
    task::run(mm, user_op::WRITE, l.data + 8, 0x5a) == Exit::Exited(0x5a)
}

/// Take [`FAULTS_PER_CPU`] faults (at most [`MAX_ROUNDS`] rounds), each round also cycling
/// the module (`loader`) or looking it up.
fn fault_loop(tally: &Tally, loader: bool, cpus: usize) {
    let l = Current::user_layout();
    let end = l.data + l.data_len;
    let pattern = pattern();
    // Map the data area's last page; the page after it is in no VMA.
    if uaccess::copy_to_user(end - COPY_LEN, &pattern) != 0 {
        tally.wrong.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let before = percpu::faults();
    let mut live = None;
    let mut round = 0;
    while round < MAX_ROUNDS && percpu::faults() - before < FAULTS_PER_CPU {
        if !fault_round(end, &pattern, round) {
            tally.wrong.fetch_add(1, Ordering::Relaxed);
        }
        if loader {
            live = cycle_module(tally, live);
        } else {
            look_up_module(tally);
        }
        round += 1;
    }
    tally
        .faults
        .store(percpu::faults() - before, Ordering::Release);
    if loader {
        finish_cycles(tally, live, cpus);
    }
}

/// Keep the module tables changing while the other CPUs still look them up, then retire
/// the live one.
fn finish_cycles(tally: &Tally, mut live: Option<usize>, cpus: usize) {
    let start = Current::now_us();
    let others_done = || (1..cpus).all(|c| TALLY[c].done.load(Ordering::Acquire));
    while !others_done() && Current::now_us() - start < WAIT_US {
        live = cycle_module(tally, live);
    }
    if !module_cycle(None, live.map(|slot| &MODULES[slot])) {
        tally.wrong.fetch_add(1, Ordering::Relaxed);
    }
}

/// The bytes staged at the end of the data area.
fn pattern() -> [u8; COPY_LEN] {
    let mut p = [0u8; COPY_LEN];
    for (i, b) in p.iter_mut().enumerate() {
        *b = i as u8 ^ 0xa5;
    }
    p
}

/// Two kernel probes of bad addresses and one partial user copy; `true` when all three
/// returned exactly what they should.
fn fault_round(end: usize, pattern: &[u8; COPY_LEN], round: usize) -> bool {
    let mut ok = true;
    for addr in PROBES {
        let mut buf = [0u8; 8];
        // SAFETY: a read of unmapped memory has no side effects and races with nothing.
        let r = unsafe { copy_from_kernel_nofault(&mut buf, addr as *const u8) };
        ok &= r == Err(Efault);
    }
    let inside = INSIDE[round % INSIDE.len()];
    let mut buf = [0xffu8; COPY_LEN];
    let left = uaccess::copy_from_user(&mut buf, end - inside);
    ok && left == COPY_LEN - inside
        && buf[..inside] == pattern[COPY_LEN - inside..]
        && buf[inside..].iter().all(|&b| b == 0)
}

// ---------------------------------------------------------------------------------------
// The module table.

/// Two module slots used in turn, so that a table is only loaded, trimmed or rewritten
/// while it is not registered.
static MODULES: [Module; 2] = [Module::new("smp_mod_a"), Module::new("smp_mod_b")];

/// The memory of each slot's table (rewritten by every cycle that uses the slot).
struct TableMemory(core::cell::UnsafeCell<[ExceptionTableEntry; MODULE_ENTRIES]>);

// SAFETY: only the boot CPU writes a table, and only while its module is unregistered:
// `unregister_module` has returned, so no lookup can still be reading it.
unsafe impl Sync for TableMemory {}

static TABLES: [TableMemory; 2] = [const {
    TableMemory(core::cell::UnsafeCell::new(
        [const {
            ExceptionTableEntry {
                insn: 0,
                fixup: 0,
                handler: 0,
            }
        }; MODULE_ENTRIES],
    ))
}; 2];

/// The module's "code": the addresses its entries name (never executed; only looked up).
static MODULE_TEXT: [u8; 4 * MODULE_ENTRIES] = [0; 4 * MODULE_ENTRIES];

/// What entry `k` of the module points to.
fn module_targets(k: usize) -> Targets {
    let text = MODULE_TEXT.as_ptr() as usize;
    Targets {
        insn: text + 4 * k,
        fixup: text + 4 * k + 2,
        handler: extable_runtime::handlers::default as *const () as usize,
    }
}

/// The module's init code: the instructions of its first [`MODULE_INIT`] entries.
fn module_init_range() -> core::ops::Range<usize> {
    module_targets(0).insn..module_targets(MODULE_INIT).insn
}

/// Look every entry of the module up once: each must be the right entry or none.
fn look_up_module(tally: &Tally) {
    for k in 0..MODULE_ENTRIES {
        let want = module_targets(k);
        tally.lookups.fetch_add(1, Ordering::Relaxed);
        if let Some(found) = search_exception_tables(want.insn) {
            tally.found.fetch_add(1, Ordering::Relaxed);
            if found != want {
                tally.wrong.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One module cycle on the boot CPU: the slot not `live` gets a fresh table and becomes
/// the live one, the old live one is retired. Counted in [`CYCLES`] or as a wrong outcome;
/// returns the new live slot.
fn cycle_module(tally: &Tally, live: Option<usize>) -> Option<usize> {
    let slot = live.map_or(0, |l| (l + 1) % MODULES.len());
    let retire = live.map(|l| &MODULES[l]);
    if module_cycle(Some((&MODULES[slot], &TABLES[slot])), retire) {
        CYCLES.fetch_add(1, Ordering::Release);
    } else {
        tally.wrong.fetch_add(1, Ordering::Relaxed);
    }
    Some(slot)
}

/// Every use of the module-table API. With `load`: write a fresh table into the (retired)
/// module's memory, load and register it and check its init entry is found; trim its init
/// entries while it is registered and looked up, and check the others are still found; it
/// stays registered. With `retire`: unregister that module, which returns once no lookup can
/// still be reading it, so that its memory may be rewritten by a later cycle. `true` when
/// each step did what it should.
fn module_cycle(
    load: Option<(&'static Module, &'static TableMemory)>,
    retire: Option<&'static Module>,
) -> bool {
    let mut ok = true;
    if let Some((module, memory)) = load {
        // SAFETY: `module` was retired (`unregister_module` returned) or never registered,
        // so nobody reads this memory; only this CPU writes it.
        let table = unsafe { &mut *memory.0.get() };
        for (k, slot) in table.iter_mut().rev().enumerate() {
            let at = slot as *const ExceptionTableEntry as usize;
            let Some([insn, fixup, handler]) = ExceptionTableEntry::encode(at, module_targets(k))
            else {
                return false;
            };
            *slot = ExceptionTableEntry {
                insn,
                fixup,
                handler,
            };
        }
        // SAFETY: the module is not registered, and the table (in a static) is only rewritten
        // by a later cycle, after `unregister_module` has returned.
        let loaded = unsafe { module.load(table, module_init_range()) };
        ok &= loaded.entries == MODULE_ENTRIES && register_module(module).is_ok();
        ok &= search_exception_tables(module_targets(0).insn) == Some(module_targets(0));
        // SAFETY: the table is live (loaded, registered) and only this CPU loads or
        // unregisters modules; the init code (never run) is gone.
        let dropped = unsafe { module.trim_init() };
        ok &= dropped == MODULE_INIT && module.len() == MODULE_ENTRIES - MODULE_INIT;
        let last = module_targets(MODULE_ENTRIES - 1);
        ok &= search_exception_tables(last.insn) == Some(last);
    }
    if let Some(old) = retire {
        unregister_module(old);
    }
    if load.is_some() {
        // Only the retired module could have answered for the trimmed entry.
        ok &= search_exception_tables(module_targets(0).insn).is_none();
    }
    ok
}
