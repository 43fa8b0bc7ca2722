//! AArch64: the faulting accesses of the user-access functions.
//!
//! Bulk copies move doublewords while both pointers are 8-byte aligned (checked first, so
//! Device memory never sees an unaligned access). A fault in the doubleword loop retries
//! that doubleword byte by byte, so the count not copied is exact.
//!
//! User memory is accessed with the unprivileged `LDTR`/`STTR` forms, as Linux's arm64
//! user copies do: they are checked against the EL0 permissions, so they work with
//! PSTATE.PAN set (where a plain `LDR` of a user page faults) and never reach a kernel-only
//! page. A copy side outside the user range (a kernel buffer, or the source of
//! `copy_from_kernel_nofault`) uses the plain forms. At EL0 (the hosted backend) both forms
//! behave the same.

use crate::uaccess::{user_range, Fault, UserWord};

/// Nothing to open on AArch64: the unprivileged forms need no PAN toggle.
#[inline(always)]
pub(crate) fn user_access_begin() {}

/// Nothing to close on AArch64.
#[inline(always)]
pub(crate) fn user_access_end() {}

/// Copy `n` bytes from `src` to `dst`; returns the number not copied, exact at a fault.
/// A side that starts in the user range is accessed with the unprivileged forms.
///
/// # Safety
/// Both ranges must be valid to access or unmapped (faults are fixed); neither may be
/// memory Rust code references while this runs.
#[inline]
pub(crate) unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let user = user_range();
    // SAFETY: forwarded; each variant only changes which accesses are unprivileged.
    unsafe {
        if user.contains(&(dst as usize)) {
            copy_to_user_mem(dst, src, n)
        } else if user.contains(&(src as usize)) {
            copy_from_user_mem(dst, src, n)
        } else {
            copy_kernel(dst, src, n)
        }
    }
}

/// [`copy`] with plain loads and stores: neither side is user memory.
///
/// # Safety
/// As [`copy`].
#[inline]
unsafe fn copy_kernel(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: every access that may fault is marked; the fixups stay inside the block.
    unsafe {
        crate::asm!(
            "orr {t}, {d}, {s}",
            "tst {t}, #7",
            "b.ne 5f",
            "6:",
            "cmp {n}, #8",
            "b.lo 5f",
            "[ex => 5f] ldr {t}, [{s}]",
            "[ex => 5f] str {t}, [{d}]",
            "add {s}, {s}, #8",
            "add {d}, {d}, #8",
            "sub {n}, {n}, #8",
            "b 6b",
            // Bytes: the unaligned case, the tail, and the retry after a doubleword faulted.
            "5:",
            "cbz {n}, 7f",
            "[ex => 7f] ldrb {t:w}, [{s}]",
            "[ex => 7f] strb {t:w}, [{d}]",
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
            "cbz {n}, 7f",
            "5:",
            "[ex => 7f] ldrb {t:w}, [{s}], #1",
            "strb {t:w}, [{d}], #1",
            "subs {n}, {n}, #1",
            "b.ne 5b",
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

/// [`copy`] from user memory (`LDTR`) to a kernel buffer.
///
/// # Safety
/// As [`copy`].
#[inline]
unsafe fn copy_from_user_mem(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: every access that may fault is marked; the fixups stay inside the block.
    unsafe {
        crate::asm!(
            "orr {t}, {d}, {s}",
            "tst {t}, #7",
            "b.ne 5f",
            "6:",
            "cmp {n}, #8",
            "b.lo 5f",
            "[ex => 5f] ldtr {t}, [{s}]",
            "[ex => 5f] str {t}, [{d}]",
            "add {s}, {s}, #8",
            "add {d}, {d}, #8",
            "sub {n}, {n}, #8",
            "b 6b",
            // Bytes: the unaligned case, the tail, and the retry after a doubleword faulted.
            "5:",
            "cbz {n}, 7f",
            "[ex => 7f] ldtrb {t:w}, [{s}]",
            "[ex => 7f] strb {t:w}, [{d}]",
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

/// [`copy`] to user memory (`STTR`) from a kernel buffer.
///
/// # Safety
/// As [`copy`].
#[inline]
unsafe fn copy_to_user_mem(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: every access that may fault is marked; the fixups stay inside the block.
    unsafe {
        crate::asm!(
            "orr {t}, {d}, {s}",
            "tst {t}, #7",
            "b.ne 5f",
            "6:",
            "cmp {n}, #8",
            "b.lo 5f",
            "[ex => 5f] ldr {t}, [{s}]",
            "[ex => 5f] sttr {t}, [{d}]",
            "add {s}, {s}, #8",
            "add {d}, {d}, #8",
            "sub {n}, {n}, #8",
            "b 6b",
            // Bytes: the unaligned case, the tail, and the retry after a doubleword faulted.
            "5:",
            "cbz {n}, 7f",
            "[ex => 7f] ldrb {t:w}, [{s}]",
            "[ex => 7f] sttrb {t:w}, [{d}]",
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

/// Zero `n` bytes at user address `dst` (`STTR`); returns the number not cleared, exact at
/// a fault.
///
/// # Safety
/// As [`copy`].
#[inline]
pub(crate) unsafe fn clear(dst: *mut u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: every access that may fault is marked; the fixups stay inside the block.
    unsafe {
        crate::asm!(
            "tst {d}, #7",
            "b.ne 5f",
            "6:",
            "cmp {n}, #8",
            "b.lo 5f",
            "[ex => 5f] sttr xzr, [{d}]",
            "add {d}, {d}, #8",
            "sub {n}, {n}, #8",
            "b 6b",
            "5:",
            "cbz {n}, 7f",
            "[ex => 7f] sttrb wzr, [{d}]",
            "add {d}, {d}, #1",
            "sub {n}, {n}, #1",
            "b 5b",
            "7:",
            handler = uaccess,
            n = inout(reg) n => left,
            d = inout(reg) dst => _,
            options(nostack),
        );
    }
    left
}

/// `UserWord` for one integer type: a marked unprivileged load with the fault recorded, a
/// marked unprivileged store whose fixup is a Rust `label` block.
macro_rules! user_word {
    ($t:ty, $reg_t:ty, $load:literal, $store:literal) => {
        impl UserWord for $t {
            #[inline]
            unsafe fn load(addr: usize) -> Result<Self, Fault> {
                let value: $reg_t;
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
                        v = in(reg) value as $reg_t,
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

user_word!(
    u8,
    u32,
    "[ex] ldtrb {v:w}, [{p}]",
    "[ex] sttrb {v:w}, [{p}]"
);
user_word!(
    u16,
    u32,
    "[ex] ldtrh {v:w}, [{p}]",
    "[ex] sttrh {v:w}, [{p}]"
);
user_word!(u32, u32, "[ex] ldtr {v:w}, [{p}]", "[ex] sttr {v:w}, [{p}]");
user_word!(u64, u64, "[ex] ldtr {v}, [{p}]", "[ex] sttr {v}, [{p}]");
