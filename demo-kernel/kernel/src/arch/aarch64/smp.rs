//! The other CPUs: PSCI `CPU_ON` through the HVC conduit (QEMU `virt` without secure
//! firmware), each CPU entering `aarch64_secondary_entry` (entry.S) with its number as the
//! context id; its own stack, vectors, MMU and TPIDR_EL1 are set there and in
//! [`super::mmu::cpu_init`] before it enters [`crate::percpu::secondary_main`].

use super::mmu;
use crate::percpu::{self, MAX_CPUS};

/// PSCI `CPU_ON` (SMC64 calling convention).
const PSCI_CPU_ON: u64 = 0xc400_0003;
/// PSCI success.
const PSCI_SUCCESS: i64 = 0;

/// How long the boot CPU waits for the started CPUs to check in, in microseconds.
const CHECK_IN_US: u64 = 2_000_000;

extern "C" {
    static aarch64_secondary_entry: u8;
}

/// This CPU's number, from TPIDR_EL1 (set by the boot code on each CPU before it can fault).
pub fn cpu_id() -> usize {
    let v: u64;
    // SAFETY: reads TPIDR_EL1, no side effects.
    unsafe { core::arch::asm!("mrs {}, tpidr_el1", out(reg) v, options(nomem, nostack)) };
    (v as usize).min(MAX_CPUS - 1)
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
/// each runs `entry(cpu)`. Returns the CPUs online.
pub fn start_secondaries(entry: fn(usize)) -> usize {
    let phys = mmu::virt_to_phys(core::ptr::addr_of!(aarch64_secondary_entry) as usize);
    // On virt, MPIDR.Aff0 is the CPU number.
    percpu::start_numbered(entry, CHECK_IN_US, "PSCI CPU_ON (hvc)", |cpu| {
        psci_cpu_on(cpu as u64, phys, cpu as u64) == PSCI_SUCCESS
    })
}

/// A secondary CPU, running at its linked address with its stack, vectors, TPIDR_EL1 and
/// MMU set: the shared part of its life, then park.
pub fn secondary_main(cpu: usize) -> ! {
    percpu::secondary_main(cpu);
    loop {
        // SAFETY: parking; nothing wakes this CPU for work again.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}
