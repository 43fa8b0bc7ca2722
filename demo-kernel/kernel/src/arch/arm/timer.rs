//! Time since the machine started, from the ARM generic timer's physical counter.
//!
//! QEMU starts CNTPCT at 0 when the virtual machine starts, so the counter read at the last
//! scenario is the boot time.

/// The counter's frequency (CNTFRQ) in Hz.
fn frequency() -> u64 {
    let f: u32;
    // SAFETY: reads CNTFRQ, which has no side effects.
    unsafe { core::arch::asm!("mrc p15, 0, {}, c14, c0, 0", out(reg) f, options(nomem, nostack)) };
    u64::from(f)
}

/// The physical count (CNTPCT).
fn count() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `isb` orders the read after earlier instructions; reading CNTPCT has no side
    // effects.
    unsafe {
        core::arch::asm!(
            "isb",
            "mrrc p15, 0, {}, {}, c14",
            out(reg) lo,
            out(reg) hi,
            options(nomem, nostack),
        )
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Microseconds since the machine started.
pub fn uptime_us() -> u64 {
    match frequency() {
        0 => 0,
        f => count().saturating_mul(1_000_000) / f,
    }
}
