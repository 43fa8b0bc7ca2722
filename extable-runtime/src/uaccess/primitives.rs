//! The portable half of the user-access functions: range checks, the user-access bracket,
//! Linux's return conventions. The faulting accesses themselves live in [`arch`].

use super::{access_ok, user_range, Efault, Fault, UserPtr};

#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
#[cfg_attr(target_arch = "arm", path = "arch/arm.rs")]
#[cfg_attr(target_arch = "aarch64", path = "arch/aarch64.rs")]
pub mod arch;

/// The default end of the user range on this target (Linux's `TASK_SIZE_MAX`).
pub const DEFAULT_USER_LIMIT: usize = super::LIMIT;

/// Open user access for as long as it lives (x86_64: `STAC` ... `CLAC` when SMAP is on;
/// Linux's `user_access_begin`/`user_access_end`). Only marked `asm!` blocks may run
/// inside, never a function that could touch user memory by accident.
struct UserAccess;

impl UserAccess {
    #[inline(always)]
    fn begin() -> Self {
        arch::user_access_begin();
        UserAccess
    }
}

impl Drop for UserAccess {
    #[inline(always)]
    fn drop(&mut self) {
        arch::user_access_end();
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The types [`get_user`] and [`put_user`] move: `u8`, `u16`, `u32`, `u64` and `usize`.
pub trait UserWord: Copy + sealed::Sealed {
    /// Load from `addr` inside a marked block.
    ///
    /// # Safety
    /// `addr` must pass [`access_ok`] (or be a kernel address the caller may read), and the
    /// caller must have opened user access (`UserAccess`) when it is a user address.
    #[doc(hidden)]
    unsafe fn load(addr: usize) -> Result<Self, Fault>;

    /// Store `value` to `addr` inside a marked block.
    ///
    /// # Safety
    /// As [`UserWord::load`], and the memory must not be memory Rust code references.
    #[doc(hidden)]
    unsafe fn store(addr: usize, value: Self) -> Result<(), Fault>;
}

macro_rules! sealed {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {})* };
}
sealed!(u8, u16, u32, u64, usize);

#[cfg(target_pointer_width = "64")]
type UsizeAs = u64;
#[cfg(target_pointer_width = "32")]
type UsizeAs = u32;

impl UserWord for usize {
    #[inline]
    unsafe fn load(addr: usize) -> Result<Self, Fault> {
        // SAFETY: forwarded; `usize` and `UsizeAs` have the same size.
        unsafe { UsizeAs::load(addr) }.map(|v| v as usize)
    }
    #[inline]
    unsafe fn store(addr: usize, value: Self) -> Result<(), Fault> {
        // SAFETY: forwarded.
        unsafe { UsizeAs::store(addr, value as UsizeAs) }
    }
}

/// Copy `dst.len()` bytes from user address `src`; returns the number of bytes **not**
/// copied (0 on success, `dst.len()` when the range check refuses `src`). The uncopied tail
/// of `dst` is zeroed, so no stale kernel data survives a short copy.
pub fn copy_from_user(dst: &mut [u8], src: UserPtr<u8>) -> usize {
    let n = dst.len();
    let left = if access_ok(src, n) {
        let _ua = UserAccess::begin();
        // SAFETY: `src..src+n` is inside the user range (checked), which holds no memory
        // Rust code references; `dst` is a valid buffer of `n` bytes; faults are fixed.
        unsafe { arch::copy(dst.as_mut_ptr(), src.addr() as *const u8, n) }
    } else {
        n
    };
    dst[n - left..].fill(0);
    left
}

/// Copy `src` to user address `dst`; returns the number of bytes **not** copied.
pub fn copy_to_user(dst: UserPtr<u8>, src: &[u8]) -> usize {
    let n = src.len();
    if !access_ok(dst, n) {
        return n;
    }
    let _ua = UserAccess::begin();
    // SAFETY: `dst..dst+n` is inside the user range, which holds no memory Rust code
    // references; `src` is valid for `n` bytes; faults are fixed.
    unsafe { arch::copy(dst.addr() as *mut u8, src.as_ptr(), n) }
}

/// Read one `T` from user address `src`.
pub fn get_user<T: UserWord>(src: UserPtr<T>) -> Result<T, Efault> {
    if !access_ok(src, core::mem::size_of::<T>()) {
        return Err(Efault);
    }
    let _ua = UserAccess::begin();
    // SAFETY: the range passed `access_ok`; user access is open.
    unsafe { T::load(src.addr()) }.map_err(Efault::from)
}

/// Write `value` to user address `dst` (Linux's argument order).
pub fn put_user<T: UserWord>(value: T, dst: UserPtr<T>) -> Result<(), Efault> {
    if !access_ok(dst, core::mem::size_of::<T>()) {
        return Err(Efault);
    }
    let _ua = UserAccess::begin();
    // SAFETY: the range passed `access_ok`, so it is user memory no Rust code references;
    // user access is open.
    unsafe { T::store(dst.addr(), value) }.map_err(Efault::from)
}

/// Zero `n` bytes at user address `dst`; returns the number of bytes **not** cleared.
pub fn clear_user(dst: UserPtr<u8>, n: usize) -> usize {
    if !access_ok(dst, n) {
        return n;
    }
    let _ua = UserAccess::begin();
    // SAFETY: as `copy_to_user`.
    unsafe { arch::clear(dst.addr() as *mut u8, n) }
}

/// Copy a NUL-terminated string from user address `src` into `dst`, at most `dst.len()`
/// bytes (Linux's `count`).
///
/// Returns `Ok(len)`, the string's length without its NUL (which is copied too), when a NUL
/// comes within `dst.len()` bytes; `Ok(dst.len())` when none does (then `dst` is not
/// terminated); `Err(Efault)` on a fault, or when the string runs into the end of the user
/// range before either.
pub fn strncpy_from_user(dst: &mut [u8], src: UserPtr<u8>) -> Result<usize, Efault> {
    let count = dst.len();
    if count == 0 {
        return Ok(0);
    }
    let range = user_range();
    let addr = src.addr();
    if addr < range.start || addr >= range.end {
        return Err(Efault);
    }
    let max = range.end - addr;
    let _ua = UserAccess::begin();
    for (i, slot) in dst.iter_mut().take(max).enumerate() {
        // SAFETY: `addr + i` is inside the user range (`i < max`); user access is open.
        let byte = unsafe { u8::load(addr + i) }?;
        *slot = byte;
        if byte == 0 {
            return Ok(i);
        }
    }
    if max < count {
        // The end of the user range came first: the string is not all in user space.
        return Err(Efault);
    }
    Ok(count)
}

/// Copy `dst.len()` bytes from a kernel address without crashing on a bad one: Linux's
/// `copy_from_kernel_nofault` (`probe_kernel_read`), for debuggers and probes.
///
/// On x86_64, refused with `Err(Efault)` **before any access**, as Linux's x86
/// `copy_from_kernel_nofault_allowed` does: a range that overlaps the user range (reading user
/// memory is `copy_from_user`'s job, and without SMAP the read would succeed) or that is not
/// canonical. On every target, a range that wraps around the address space is refused. ARM
/// and AArch64 allow the rest, as Linux's generic `copy_from_kernel_nofault_allowed` does.
/// Then one pass over the bytes, with no user-access bracket and no retry: a bad address
/// faults once and the call returns `Err(Efault)` (then `dst` may be partly written).
///
/// # Safety
/// Reading `src` must have no side effects (no device registers) and must not race with
/// writes by Rust code; the memory need not be mapped.
pub unsafe fn copy_from_kernel_nofault(dst: &mut [u8], src: *const u8) -> Result<(), Efault> {
    let n = dst.len();
    if !kernel_read_allowed(src as usize, n) {
        return Err(Efault);
    }
    // SAFETY: `dst` is valid for `n` bytes; reading `src` is side-effect free and race-free
    // (the caller's contract); a fault is fixed through the table.
    match unsafe { arch::copy_nofault(dst.as_mut_ptr(), src, n) } {
        0 => Ok(()),
        _ => Err(Efault),
    }
}

/// Whether `copy_from_kernel_nofault` may read `n` bytes at `addr`.
fn kernel_read_allowed(addr: usize, n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let Some(last) = addr.checked_add(n - 1) else {
        return false;
    };
    #[cfg(target_arch = "x86_64")]
    {
        let user = user_range();
        let overlaps_user = !user.is_empty() && addr < user.end && last >= user.start;
        let canonical = arch::is_canonical(addr)
            && arch::is_canonical(last)
            && ((addr as isize) < 0) == ((last as isize) < 0);
        !overlaps_user && canonical
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = last;
        true
    }
}
