//! ARMv7-A (A32 and T32: the same source assembles in both): the faulting accesses of the
//! user-access functions.
//!
//! Bulk copies move words while both pointers are word-aligned (alignment checked first,
//! so memory mapped as Device, or with the MMU off, never sees an unaligned access). A fault
//! in the word loop retries that word byte by byte, so the count not copied is exact.

use crate::uaccess::{Fault, UserWord};

/// Nothing to open on ARMv7 (no PAN in this runtime).
#[inline(always)]
pub(crate) fn user_access_begin() {}

/// Nothing to close on ARMv7.
#[inline(always)]
pub(crate) fn user_access_end() {}

/// Copy `n` bytes from `src` to `dst`; returns the number not copied, exact at a fault.
///
/// # Safety
/// Both ranges must be valid to access or unmapped (faults are fixed); neither may be
/// memory Rust code references while this runs.
#[inline]
pub(crate) unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: every access that may fault is marked; the fixups stay inside the block.
    unsafe {
        crate::asm!(
            "orr {t}, {d}, {s}",
            "tst {t}, #3",
            "bne 5f",
            "6:",
            "cmp {n}, #4",
            "blo 5f",
            "[ex => 5f] ldr {t}, [{s}]",
            "[ex => 5f] str {t}, [{d}]",
            "add {s}, {s}, #4",
            "add {d}, {d}, #4",
            "sub {n}, {n}, #4",
            "b 6b",
            // Bytes: the unaligned case, the tail, and the retry after a word faulted.
            "5:",
            "cmp {n}, #0",
            "beq 7f",
            "[ex => 7f] ldrb {t}, [{s}]",
            "[ex => 7f] strb {t}, [{d}]",
            "add {s}, {s}, #1",
            "add {d}, {d}, #1",
            "sub {n}, {n}, #1",
            "b 5b",
            "7:",
            handler = uaccess,
            n = inout(reg) n => left,
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            t = out(reg) _,
            options(nostack),
        );
    }
    left
}

/// Copy `n` bytes from `src` to `dst` for `copy_from_kernel_nofault`, a byte at a time; a
/// fault ends the copy (the bad address faults once). Returns the number not copied (0 on
/// success). The handler is the plain default: no "user access" warning for a kernel probe.
///
/// # Safety
/// `src` must be readable without side effects or unmapped; `dst` is valid for `n` bytes.
#[inline]
pub(crate) unsafe fn copy_nofault(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: the only access that may fault, the load, is marked; the fixup is the end of
    // the block. The store goes to `dst`, a valid buffer.
    unsafe {
        crate::asm!(
            "cmp {n}, #0",
            "beq 7f",
            "5:",
            "[ex => 7f] ldrb {t}, [{s}], #1",
            "strb {t}, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 5b",
            "7:",
            handler = default,
            n = inout(reg) n => left,
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            t = out(reg) _,
            options(nostack),
        );
    }
    left
}

/// Zero `n` bytes at `dst`; returns the number not cleared, exact at a fault.
///
/// # Safety
/// As [`copy`].
#[inline]
pub(crate) unsafe fn clear(dst: *mut u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: every access that may fault is marked; the fixups stay inside the block.
    unsafe {
        crate::asm!(
            "mov {z}, #0",
            "tst {d}, #3",
            "bne 5f",
            "6:",
            "cmp {n}, #4",
            "blo 5f",
            "[ex => 5f] str {z}, [{d}]",
            "add {d}, {d}, #4",
            "sub {n}, {n}, #4",
            "b 6b",
            "5:",
            "cmp {n}, #0",
            "beq 7f",
            "[ex => 7f] strb {z}, [{d}]",
            "add {d}, {d}, #1",
            "sub {n}, {n}, #1",
            "b 5b",
            "7:",
            handler = uaccess,
            n = inout(reg) n => left,
            d = inout(reg) dst => _,
            z = out(reg) _,
            options(nostack),
        );
    }
    left
}

/// `UserWord` for a type of one register: a marked load with the fault recorded, a marked
/// store whose fixup is a Rust `label` block.
macro_rules! user_word {
    ($t:ty, $load:literal, $store:literal) => {
        impl UserWord for $t {
            #[inline]
            unsafe fn load(addr: usize) -> Result<Self, Fault> {
                let value: u32;
                // SAFETY: the load is marked; the caller vouches for the address.
                unsafe {
                    crate::asm!(
                        $load,
                        p = in(reg) addr,
                        v = out(reg) value,
                        handler = uaccess,
                        options(nostack, preserves_flags),
                    )
                }?;
                Ok(value as $t)
            }

            #[inline]
            unsafe fn store(addr: usize, value: Self) -> Result<(), Fault> {
                // SAFETY: the store is marked; the caller vouches for the address.
                unsafe {
                    crate::asm!(
                        $store,
                        p = in(reg) addr,
                        v = in(reg) value as u32,
                        handler = uaccess,
                        fixup = label { return Err(Fault::new(None)) },
                        options(nostack, preserves_flags),
                    )
                }
                Ok(())
            }
        }
    };
}

user_word!(u8, "[ex] ldrb {v}, [{p}]", "[ex] strb {v}, [{p}]");
user_word!(u16, "[ex] ldrh {v}, [{p}]", "[ex] strh {v}, [{p}]");
user_word!(u32, "[ex] ldr {v}, [{p}]", "[ex] str {v}, [{p}]");

/// Two word accesses, each marked (as Linux's `__get_user_64t_*`): `ldrd` would need
/// 8-byte alignment.
impl UserWord for u64 {
    #[inline]
    unsafe fn load(addr: usize) -> Result<Self, Fault> {
        let (lo, hi): (u32, u32);
        // SAFETY: both loads are marked; the caller vouches for the address.
        unsafe {
            crate::asm!(
                "[ex] ldr {lo}, [{p}]",
                "[ex] ldr {hi}, [{p}, #4]",
                p = in(reg) addr,
                lo = out(reg) lo,
                hi = out(reg) hi,
                handler = uaccess,
                options(nostack, preserves_flags),
            )
        }?;
        Ok(u64::from(lo) | (u64::from(hi) << 32))
    }

    #[inline]
    unsafe fn store(addr: usize, value: Self) -> Result<(), Fault> {
        // SAFETY: both stores are marked; the caller vouches for the address.
        unsafe {
            crate::asm!(
                "[ex] str {lo}, [{p}]",
                "[ex] str {hi}, [{p}, #4]",
                p = in(reg) addr,
                lo = in(reg) value as u32,
                hi = in(reg) (value >> 32) as u32,
                handler = uaccess,
                fixup = label { return Err(Fault::new(None)) },
                options(nostack, preserves_flags),
            )
        }
        Ok(())
    }
}
