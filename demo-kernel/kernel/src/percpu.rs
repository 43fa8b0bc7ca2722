//! Per-CPU data the shared kernel keeps: each CPU's exception-fixup recursion guard and
//! memory-fault count.
//!
//! A CPU finds its own slot through [`Arch::cpu_id`] (GS base on x86_64, TPIDRPRW on
//! ARMv7, TPIDR_EL1 on AArch64), which the arch's boot code sets before the CPU can take a
//! fault. [`guard`] is registered once at boot as the runtime's guard accessor, so
//! `extable_runtime::fixup_exception` on any CPU uses that CPU's guard: two CPUs fixing
//! faults at the same time never see each other's handler nesting as a recursive fault.
//!
//! It also keeps the bring-up bookkeeping every architecture shares: what the other CPUs run
//! and how many are online ([`prepare_secondaries`], [`secondary_main`], [`wait_online`]),
//! and the one-CPU-at-a-time start of the PSCI architectures ([`start_numbered`]).

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use extable_runtime::FixupGuard;

use crate::arch::{Arch, Current};

/// How many CPUs the kernel brings up at most (the others stay parked by the arch).
pub const MAX_CPUS: usize = 8;

/// One guard per CPU, indexed by [`Arch::cpu_id`].
static GUARDS: [FixupGuard; MAX_CPUS] = [const { FixupGuard::new() }; MAX_CPUS];

/// This CPU's exception-fixup recursion guard.
pub fn guard() -> &'static FixupGuard {
    &GUARDS[Current::cpu_id()]
}

/// Memory faults (page faults, data and prefetch aborts) each CPU took.
static FAULTS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// Count a memory fault on this CPU (called by the arch's fault entry).
pub fn count_fault() {
    FAULTS[Current::cpu_id()].fetch_add(1, Ordering::Relaxed);
}

/// Memory faults this CPU has taken since boot.
pub fn faults() -> usize {
    FAULTS[Current::cpu_id()].load(Ordering::Relaxed)
}

/// What the other CPUs run once they are up (a `fn(usize)`, or null before
/// [`prepare_secondaries`]).
static ENTRY: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
/// CPUs that reached [`secondary_main`], the boot CPU included.
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// Record what the CPUs about to be started run (by [`Arch::start_secondaries`], before it
/// starts any).
pub fn prepare_secondaries(entry: fn(usize)) {
    ENTRY.store(entry as *mut (), Ordering::Release);
}

/// How many CPUs are online, the boot CPU included.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Wait (polling the arch clock, at most `timeout_us`) until `want` CPUs are online;
/// returns how many are.
pub fn wait_online(want: usize, timeout_us: u64) -> usize {
    let start = Current::now_us();
    while online() < want && Current::now_us() - start < timeout_us {
        core::hint::spin_loop();
    }
    online()
}

/// The shared part of a started CPU's life, called by the arch once this CPU's stack,
/// vectors, MMU and per-CPU data are set: count it online and run the entry. The arch parks
/// the CPU when this returns.
pub fn secondary_main(cpu: usize) {
    ONLINE.fetch_add(1, Ordering::AcqRel);
    let entry = ENTRY.load(Ordering::Acquire);
    if entry.is_null() {
        return;
    }
    // SAFETY: `prepare_secondaries` only ever stores a `fn(usize)`, and it is not null.
    let entry = unsafe { core::mem::transmute::<*mut (), fn(usize)>(entry) };
    entry(cpu);
}

/// Set by the first [`claim_start`]: the other CPUs are started once per boot.
static STARTED: AtomicBool = AtomicBool::new(false);

/// `true` for the first caller only: whoever gets it starts the other CPUs; every later
/// [`Arch::start_secondaries`] just reports [`online`].
pub fn claim_start() -> bool {
    !STARTED.swap(true, Ordering::AcqRel)
}

/// The bring-up of the architectures that start one CPU by number (PSCI `CPU_ON` on ARMv7
/// and AArch64): on the first call, record `entry`, call `cpu_on(n)` for CPU 1, 2, ... until
/// it refuses one (there is no such CPU) or [`MAX_CPUS`] are asked for, wait at most
/// `timeout_us` until every started CPU is online and print what `how` started. Returns how
/// many CPUs are online, the boot CPU included; later calls start nothing.
// x86_64 starts its CPUs all at once (INIT-SIPI-SIPI to all but itself).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub fn start_numbered(
    entry: fn(usize),
    timeout_us: u64,
    how: &str,
    mut cpu_on: impl FnMut(usize) -> bool,
) -> usize {
    if !claim_start() {
        return online();
    }
    prepare_secondaries(entry);
    let started = (1..MAX_CPUS).take_while(|&cpu| cpu_on(cpu)).count();
    let online = wait_online(started + 1, timeout_us);
    crate::println!(
        "{}: {} started {} secondary CPU(s): {} online",
        Current::NAME,
        how,
        started,
        online
    );
    online
}
