//! Module tables, init trimming, duplicate reporting and handler dispatch through
//! `fixup_exception_with`, on tables laid out in static memory (within `i32` reach of the
//! handlers' code) and saved frames of the x86_64 layout.

use std::sync::atomic::{AtomicUsize, Ordering};

use extable_runtime::arch::x86_64::PtRegs;
use extable_runtime::entry::{ExceptionTableEntry, Targets, ENTRY_SIZE};
use extable_runtime::table::{register_module, unregister_module, Module, Order, Registry};
use extable_runtime::{
    fixup_exception_with, handlers, search_exception_tables, ExRegs, FaultKind, FixupGuard, Trap,
    Unfixed,
};

const EMPTY: ExceptionTableEntry = ExceptionTableEntry {
    insn: 0,
    fixup: 0,
    handler: 0,
};

/// A `&'static mut` table of `$n` entries in this binary's .bss, one per call site.
macro_rules! static_table {
    ($n:expr) => {{
        static mut TABLE: [ExceptionTableEntry; $n] = [EMPTY; $n];
        // SAFETY: each expansion has its own static and runs once per test.
        unsafe { &mut *core::ptr::addr_of_mut!(TABLE) }
    }};
}

/// Write `targets` into `table`, each encoded for its slot.
fn fill(table: &mut [ExceptionTableEntry], targets: &[Targets]) {
    let base = table.as_ptr() as usize;
    for (i, t) in targets.iter().enumerate() {
        let [insn, fixup, handler] =
            ExceptionTableEntry::encode(base + i * ENTRY_SIZE, *t).expect("in reach");
        table[i] = ExceptionTableEntry {
            insn,
            fixup,
            handler,
        };
    }
}

/// Fake instruction addresses near `table` (never executed, only looked up), by offset.
fn fake(table: &[ExceptionTableEntry]) -> impl Fn(usize) -> usize {
    let base = table.as_ptr() as usize + 0x10_0000;
    move |offset| base + offset
}

fn t(insn: usize, fixup: usize, handler: handlers::Handler) -> Targets {
    Targets {
        insn,
        fixup,
        handler: handler as usize,
    }
}

fn pf() -> Trap {
    Trap::new(14, FaultKind::NotMapped).with_address(0)
}

fn regs_at(pc: usize) -> PtRegs {
    PtRegs {
        rip: pc as u64,
        ..PtRegs::default()
    }
}

#[test]
fn module_table_is_sorted_at_load_registered_and_unregistered() {
    static MODULE: Module = Module::new("sorted");
    let table = static_table!(5);
    let a = fake(table);
    let order = [40, 8, 24, 0, 16];
    let targets: Vec<Targets> = order
        .iter()
        .map(|&k| t(a(k), a(k + 0x1000), handlers::default))
        .collect();
    fill(table, &targets);
    // SAFETY: the table is ours and nothing looks it up yet.
    let report = unsafe { MODULE.load(table, 0..0) };
    assert_eq!(report.order, Order::SortedAtInit);
    assert_eq!(report.entries, 5);
    assert!(
        search_exception_tables(a(16)).is_none(),
        "not searched before registration"
    );
    register_module(&MODULE).unwrap();
    for k in order {
        let e = search_exception_tables(a(k)).expect("registered module is searched");
        assert_eq!(e.fixup, a(k + 0x1000), "fixup kept through the sort");
    }
    assert!(search_exception_tables(a(4)).is_none());
    unregister_module(&MODULE);
    assert!(search_exception_tables(a(16)).is_none());
}

#[test]
fn trim_init_narrows_the_searched_range_at_the_start_and_the_end_only() {
    // As Linux's `trim_init_extable`: init entries at either end stop being searched; a run
    // in the middle (not a layout linkers produce) is left alone, and no entry ever moves.
    for (name, init, dropped_keys) in [
        ("start", 0..16, &[0usize, 8][..]),
        ("middle", 16..32, &[][..]),
        ("end", 40..64, &[40, 48, 56][..]),
        ("all", 0..64, &[0, 8, 16, 24, 32, 40, 48, 56][..]),
    ] {
        let module: &'static Module = Box::leak(Box::new(Module::new(name)));
        let registry = Registry::<1>::new();
        let table = static_table!(8);
        let a = fake(table);
        let keys = [0usize, 8, 16, 24, 32, 40, 48, 56];
        let targets: Vec<Targets> = keys
            .iter()
            .map(|&k| t(a(k), a(k + 0x2000), handlers::default))
            .collect();
        fill(table, &targets);
        let before: Vec<[i32; 3]> = table.iter().map(|e| [e.insn, e.fixup, e.handler]).collect();
        let table_addr = table.as_ptr() as usize;
        let init_range = a(init.start)..a(init.end);
        // SAFETY: the table is ours and the module is not registered.
        unsafe { module.load(table, init_range.clone()) };
        registry.register(module).unwrap();
        // SAFETY: the table is live until the end of the iteration.
        assert_eq!(unsafe { module.trim_init() }, dropped_keys.len(), "{name}");
        // SAFETY: as above.
        let again = unsafe { module.trim_init() };
        assert_eq!(again, 0, "{name}: a second trim drops nothing");
        for k in keys {
            let found = registry.search(a(k));
            if dropped_keys.contains(&k) {
                assert!(found.is_none(), "{name}: init entry {k} still searched");
            } else {
                assert_eq!(
                    found.map(|e| e.fixup),
                    Some(a(k + 0x2000)),
                    "{name}: entry {k}"
                );
            }
        }
        assert_eq!(module.len(), 8 - dropped_keys.len());
        registry.unregister(module);
        // SAFETY: unregistered: nothing can look the table up any more.
        let table =
            unsafe { std::slice::from_raw_parts(table_addr as *const ExceptionTableEntry, 8) };
        let after: Vec<[i32; 3]> = table.iter().map(|e| [e.insn, e.fixup, e.handler]).collect();
        assert_eq!(before, after, "{name}: trimming moved entries");
    }
}

#[test]
fn duplicates_are_counted_and_conflicts_reported() {
    static MODULE: Module = Module::new("dups");
    let table = static_table!(4);
    let a = fake(table);
    fill(
        table,
        &[
            t(a(0), a(0x100), handlers::default),
            t(a(0), a(0x100), handlers::default), // identical: legal
            t(a(8), a(0x200), handlers::default),
            t(a(8), a(0x300), handlers::default), // same insn, other fixup: conflict
        ],
    );
    let warnings = extable_runtime::report::warning_count();
    // SAFETY: the table is ours and nothing looks it up yet.
    let report = unsafe { MODULE.load(table, 0..0) };
    assert_eq!((report.duplicates, report.conflicts), (1, 1));
    assert!(
        extable_runtime::report::warning_count() > warnings,
        "the conflict is reported"
    );
}

static NESTED: AtomicUsize = AtomicUsize::new(0);
static NESTED_GUARD: FixupGuard = FixupGuard::new();

/// A handler that faults again while running (simulated by looking up a second fault).
fn faulting_handler(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    let mut inner = regs_at(regs.pc());
    if fixup_exception_with(&NESTED_GUARD, &mut inner, trap) == Err(Unfixed::Recursive) {
        NESTED.fetch_add(1, Ordering::SeqCst);
    }
    handlers::default(entry, regs, trap)
}

fn declining(_: &ExceptionTableEntry, _: &mut dyn ExRegs, _: &Trap) -> bool {
    false
}

#[test]
fn dispatch_fixes_declines_misses_and_stops_recursion() {
    static MODULE: Module = Module::new("dispatch");
    let table = static_table!(4);
    let a = fake(table);
    fill(
        table,
        &[
            t(a(0), a(0x40), handlers::default),
            t(a(8), a(0x48), declining),
            t(a(16), a(0x50), faulting_handler),
            t(a(24), a(24), handlers::default), // its fixup is itself: a loop
        ],
    );
    // SAFETY: the table is ours and nothing looks it up yet.
    unsafe { MODULE.load(table, 0..0) };
    register_module(&MODULE).unwrap();

    let guard = FixupGuard::new();
    let mut regs = regs_at(a(0));
    assert_eq!(fixup_exception_with(&guard, &mut regs, &pf()), Ok(()));
    assert_eq!(regs.rip as usize, a(0x40), "resumes at the fixup");

    let mut regs = regs_at(a(8));
    assert_eq!(
        fixup_exception_with(&guard, &mut regs, &pf()),
        Err(Unfixed::Declined)
    );
    let mut regs = regs_at(a(4));
    assert_eq!(
        fixup_exception_with(&guard, &mut regs, &pf()),
        Err(Unfixed::NoEntry)
    );

    let mut regs = regs_at(a(16));
    assert_eq!(
        fixup_exception_with(&NESTED_GUARD, &mut regs, &pf()),
        Ok(())
    );
    assert_eq!(
        NESTED.load(Ordering::SeqCst),
        1,
        "the nested fault was refused as recursive"
    );

    let guard = FixupGuard::new();
    let mut regs = regs_at(a(24));
    for _ in 0..extable_runtime::fixup::MAX_FIXUP_CHAIN {
        assert_eq!(fixup_exception_with(&guard, &mut regs, &pf()), Ok(()));
    }
    assert_eq!(
        fixup_exception_with(&guard, &mut regs, &pf()),
        Err(Unfixed::Recursive)
    );
    unregister_module(&MODULE);
}

#[test]
fn fault_and_efault_handlers_write_registers() {
    static MODULE: Module = Module::new("regs");
    let table = static_table!(3);
    let a = fake(table);
    fill(
        table,
        &[
            t(a(0), a(0x40), handlers::fault),
            t(a(8), a(0x48), handlers::efault::<2, 0>),
            t(
                a(16),
                a(0x50),
                handlers::efault::<{ extable_runtime::NO_REG - 1 }, 0>,
            ),
        ],
    );
    // SAFETY: the table is ours and nothing looks it up yet.
    unsafe { MODULE.load(table, 0..0) };
    register_module(&MODULE).unwrap();
    let guard = FixupGuard::new();

    let mut regs = regs_at(a(0));
    assert_eq!(fixup_exception_with(&guard, &mut regs, &pf()), Ok(()));
    assert_eq!(regs.rax, 14, "fault: trap number in rax");

    let mut regs = PtRegs {
        rax: 77,
        ..regs_at(a(8))
    };
    assert_eq!(fixup_exception_with(&guard, &mut regs, &pf()), Ok(()));
    assert_eq!(
        (regs.rdx as usize as isize, regs.rax),
        (handlers::EFAULT, 0),
        "efault into rdx, rax cleared"
    );

    let mut regs = regs_at(a(16));
    assert_eq!(
        fixup_exception_with(&guard, &mut regs, &pf()),
        Err(Unfixed::Declined),
        "a register the frame lacks is refused, not guessed"
    );
    assert_eq!(regs.rip as usize, a(16), "nothing was changed");
    unregister_module(&MODULE);
}

static CAPTURED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn capture(_: extable_runtime::report::Level, args: std::fmt::Arguments<'_>) {
    CAPTURED.lock().unwrap().push(args.to_string());
}

fn gp_warnings() -> usize {
    let lines = CAPTURED.lock().unwrap();
    lines
        .iter()
        .filter(|l| l.contains("General protection fault in user access"))
        .count()
}

#[test]
fn uaccess_handler_warns_on_general_protection_only() {
    static MODULE: Module = Module::new("uaccess");
    extable_runtime::report::set_reporter(capture);
    let table = static_table!(1);
    let a = fake(table);
    fill(table, &[t(a(0), a(0x40), handlers::uaccess)]);
    // SAFETY: the table is ours and nothing looks it up yet.
    unsafe { MODULE.load(table, 0..0) };
    register_module(&MODULE).unwrap();
    let guard = FixupGuard::new();
    let mut regs = regs_at(a(0));
    assert_eq!(fixup_exception_with(&guard, &mut regs, &pf()), Ok(()));
    assert_eq!(gp_warnings(), 0, "a page fault in a user access is silent");
    let mut regs = regs_at(a(0));
    let gp = Trap::new(13, FaultKind::GeneralProtection);
    assert_eq!(fixup_exception_with(&guard, &mut regs, &gp), Ok(()));
    assert_eq!(regs.rip as usize, a(0x40));
    assert_eq!(gp_warnings(), 1, "a #GP in a user access warns");
    unregister_module(&MODULE);
}

/// Set while `waiting_handler` runs; it returns once `RELEASE` is set.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);
static RELEASE: AtomicUsize = AtomicUsize::new(0);

/// A handler that stays inside until told to leave: one "CPU" is mid-fixup.
fn waiting_handler(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    IN_HANDLER.store(1, Ordering::SeqCst);
    while RELEASE.load(Ordering::SeqCst) == 0 {
        std::hint::spin_loop();
    }
    handlers::default(entry, regs, trap)
}

std::thread_local! {
    static THREAD_GUARD: FixupGuard = const { FixupGuard::new() };
}

/// The accessor a threaded program registers: each thread (a kernel: each CPU) its own guard.
fn this_thread_guard() -> &'static FixupGuard {
    // SAFETY: used by `fixup_exception` on this thread only, which the guard outlives.
    THREAD_GUARD.with(|g| unsafe { &*(g as *const FixupGuard) })
}

#[test]
fn fixup_exception_uses_the_running_cpus_guard_and_nothing_without_one() {
    static MODULE: Module = Module::new("per-cpu");
    let table = static_table!(2);
    let a = fake(table);
    fill(
        table,
        &[
            t(a(0), a(0x40), waiting_handler),
            t(a(8), a(0x48), handlers::default),
        ],
    );
    // SAFETY: the table is ours and nothing looks it up yet.
    unsafe { MODULE.load(table, 0..0) };
    register_module(&MODULE).unwrap();

    // No accessor yet: nothing is fixed, and the fault goes to the oops path.
    let mut regs = regs_at(a(8));
    assert_eq!(
        extable_runtime::fixup_exception(&mut regs, &pf()),
        Err(Unfixed::NoGuard)
    );
    assert_eq!(regs.rip as usize, a(8), "an unfixed fault keeps its pc");

    extable_runtime::set_guard_accessor(this_thread_guard);
    // One CPU is inside a handler while another fixes a fault of its own: not recursion.
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            let mut regs = regs_at(a(0));
            extable_runtime::fixup_exception(&mut regs, &pf())
        });
        while IN_HANDLER.load(Ordering::SeqCst) == 0 {
            std::hint::spin_loop();
        }
        let mut regs = regs_at(a(8));
        assert_eq!(extable_runtime::fixup_exception(&mut regs, &pf()), Ok(()));
        assert_eq!(regs.rip as usize, a(0x48));
        RELEASE.store(1, Ordering::SeqCst);
        assert_eq!(first.join().unwrap(), Ok(()));
    });
    unregister_module(&MODULE);
}
