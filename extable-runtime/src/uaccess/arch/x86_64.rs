//! x86_64: the faulting accesses of the user-access functions, and SMAP.
//!
//! Bulk copies use `rep movsb` (fast on CPUs with ERMS/FSRM). On a fault its fixup retries
//! the rest byte by byte from where `rep movsb` stopped, so the count not copied is exact
//! even where fast strings stopped early (Linux's `copy_user_handle_tail`).

use core::sync::atomic::{AtomicBool, Ordering};

use crate::uaccess::{Fault, UserWord};

static SMAP: AtomicBool = AtomicBool::new(false);

/// Bracket every user access with `STAC`/`CLAC` (or stop doing so).
///
/// Call `set_smap(true)` once after setting CR4.SMAP. Off by default: `STAC` and `CLAC` are
/// invalid opcodes (#UD) on CPUs without SMAP and at CPL 3, where hosted code runs.
pub fn set_smap(enabled: bool) {
    SMAP.store(enabled, Ordering::Relaxed);
}

/// Whether user accesses are bracketed with `STAC`/`CLAC`.
pub fn smap_enabled() -> bool {
    SMAP.load(Ordering::Relaxed)
}

/// Allow supervisor access to user pages (`STAC`), when SMAP bracketing is on.
#[inline(always)]
pub(crate) fn user_access_begin() {
    if smap_enabled() {
        // SAFETY: SMAP bracketing is on only on CPUs with SMAP at CPL 0 (`set_smap`'s
        // contract), where STAC only sets RFLAGS.AC, which the compiler does not track.
        unsafe { core::arch::asm!("stac", options(nostack, preserves_flags)) }
    }
}

/// Forbid supervisor access to user pages again (`CLAC`).
#[inline(always)]
pub(crate) fn user_access_end() {
    if smap_enabled() {
        // SAFETY: as `user_access_begin`.
        unsafe { core::arch::asm!("clac", options(nostack, preserves_flags)) }
    }
}

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
            "[ex => 2f] rep movsb",
            "jmp 3f",
            // rep movsb faulted: rcx, rsi, rdi say where it stopped. Retry byte by byte,
            // up to the byte that faults.
            "2:",
            "test rcx, rcx",
            "jz 3f",
            "4:",
            "[ex => 3f] mov al, byte ptr [rsi]",
            "[ex => 3f] mov byte ptr [rdi], al",
            "inc rsi",
            "inc rdi",
            "dec rcx",
            "jnz 4b",
            "3:",
            handler = uaccess,
            inout("rcx") n => left,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            out("rax") _,
            options(nostack),
        );
    }
    left
}

/// Copy `n` bytes from `src` to `dst` for `copy_from_kernel_nofault`: one `rep movsb`, and
/// on a fault no retry (the bad address faults once). Returns the number not copied (0 on
/// success). The handler is the plain default: no "user access" warning for a kernel probe.
///
/// # Safety
/// `src` must be readable without side effects or unmapped; `dst` is valid for `n` bytes.
#[inline]
pub(crate) unsafe fn copy_nofault(dst: *mut u8, src: *const u8, n: usize) -> usize {
    let left: usize;
    // SAFETY: the one access that may fault (the load side of rep movsb) is marked; the
    // fixup is the end of the block.
    unsafe {
        crate::asm!(
            "[ex => 2f] rep movsb",
            "2:",
            handler = default,
            inout("rcx") n => left,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack),
        );
    }
    left
}

/// Whether `addr` is canonical for 48-bit virtual addresses (bits 63..47 all equal).
pub(crate) fn is_canonical(addr: usize) -> bool {
    let top = (addr as isize) >> 47;
    top == 0 || top == -1
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
            "xor eax, eax",
            "[ex => 2f] rep stosb",
            "jmp 3f",
            "2:",
            "test rcx, rcx",
            "jz 3f",
            "4:",
            "[ex => 3f] mov byte ptr [rdi], 0",
            "inc rdi",
            "dec rcx",
            "jnz 4b",
            "3:",
            handler = uaccess,
            inout("rcx") n => left,
            inout("rdi") dst => _,
            out("rax") _,
            options(nostack),
        );
    }
    left
}

/// `UserWord` for one integer type: a marked load with the fault recorded, a marked store
/// whose fixup is a Rust `label` block.
macro_rules! user_word {
    ($t:ty, $reg_t:ty, $class:ident, $load:literal, $store:literal) => {
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
                        v = in($class) value,
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
    reg_byte,
    "[ex] movzx {v:e}, byte ptr [{p}]",
    "[ex] mov byte ptr [{p}], {v}"
);
user_word!(
    u16,
    u32,
    reg,
    "[ex] movzx {v:e}, word ptr [{p}]",
    "[ex] mov word ptr [{p}], {v:x}"
);
user_word!(
    u32,
    u32,
    reg,
    "[ex] mov {v:e}, dword ptr [{p}]",
    "[ex] mov dword ptr [{p}], {v:e}"
);
user_word!(
    u64,
    u64,
    reg,
    "[ex] mov {v}, qword ptr [{p}]",
    "[ex] mov qword ptr [{p}], {v}"
);
