//! The other CPUs: PSCI `CPU_ON` through the HVC conduit (QEMU `virt` without secure
//! firmware), each CPU entering `aarch64_secondary_entry` (entry.S) with its number as the
//! context id; its own stack, vectors, MMU and TPIDR_EL1 are set there and in
//! [`super::mmu::cpu_init`] before it runs the entry function.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::mmu;

/// The most CPUs the kernel brings up.
pub const MAX_CPUS: usize = 8;

/// PSCI `CPU_ON` (SMC64 calling convention).
const PSCI_CPU_ON: u64 = 0xc400_0003;
/// PSCI success.
const PSCI_SUCCESS: i64 = 0;

/// How long the boot CPU waits for a started CPU to check in, in microseconds.
const CHECK_IN_US: u64 = 2_000_000;

/// CPUs online, the boot CPU included.
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Set by the first `start_secondaries`.
static STARTED: AtomicBool = AtomicBool::new(false);
/// The entry function (a `fn(usize)` as an address).
static ENTRY: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    static aarch64_secondary_entry: u8;
}

/// This CPU's number, from TPIDR_EL1 (set by the boot code on each CPU).
pub fn cpu_id() -> usize {
    let v: u64;
    // SAFETY: reads TPIDR_EL1, no side effects.
    unsafe { core::arch::asm!("mrs {}, tpidr_el1", out(reg) v, options(nomem, nostack)) };
    (v as usize).min(MAX_CPUS - 1)
}

/// CPUs online, this one included.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// PSCI `CPU_ON(target, entry, context)`: the PSCI return code.
fn psci_cpu_on(mpidr: u64, entry_phys: usize, context: u64) -> i64 {
    let ret: i64;
    // SAFETY: a PSCI call to the hypervisor (QEMU's emulation); it starts the target CPU at
    // `entry_phys` with the MMU off and `context` in x0, and touches no memory of ours.
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inlateout("x0") PSCI_CPU_ON => ret,
            in("x1") mpidr,
            in("x2") entry_phys,
            in("x3") context,
            clobber_abi("C"),
            options(nostack),
        )
    };
    ret
}

/// Start CPUs 1, 2, ... until PSCI refuses one (no such CPU) or [`MAX_CPUS`] are online;
/// each runs `entry(cpu)`. Returns the CPUs online. See `Aarch64::start_secondaries`.
pub fn start_secondaries(entry: fn(usize)) -> usize {
    if STARTED.swap(true, Ordering::AcqRel) {
        return online();
    }
    ENTRY.store(entry as usize, Ordering::Release);
    let phys = mmu::virt_to_phys(core::ptr::addr_of!(aarch64_secondary_entry) as usize);
    for cpu in 1..MAX_CPUS {
        // On virt, MPIDR.Aff0 is the CPU number.
        if psci_cpu_on(cpu as u64, phys, cpu as u64) != PSCI_SUCCESS {
            break;
        }
        let deadline = super::platform::uptime_us() + CHECK_IN_US;
        while online() <= cpu {
            if super::platform::uptime_us() > deadline {
                return online();
            }
            core::hint::spin_loop();
        }
    }
    online()
}

/// A secondary CPU, running at its linked address with its stack, vectors, TPIDR_EL1 and
/// MMU set: check in, run the entry function, park.
pub fn secondary_main(cpu: usize) -> ! {
    ONLINE.fetch_add(1, Ordering::AcqRel);
    let f = ENTRY.load(Ordering::Acquire);
    if f != 0 {
        // SAFETY: only `start_secondaries` stores here, from a `fn(usize)`.
        let entry: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(f) };
        entry(cpu);
    }
    loop {
        // SAFETY: parking; nothing wakes this CPU for work again.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}
