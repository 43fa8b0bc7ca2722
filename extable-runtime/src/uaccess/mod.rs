//! User-memory access that survives bad pointers, with Linux's names and semantics, built on
//! the `extable` macros.
//!
//! | function                         | returns                                                       |
//! |----------------------------------|---------------------------------------------------------------|
//! | [`copy_from_user`]`(dst, src)`   | bytes **not** copied (0 = success); the uncopied tail of `dst` is zeroed |
//! | [`copy_to_user`]`(dst, src)`     | bytes **not** copied                                          |
//! | [`get_user`]`(ptr)`              | `Ok(value)` or `Err(Efault)`                                  |
//! | [`put_user`]`(value, ptr)`       | `Ok(())` or `Err(Efault)`                                     |
//! | [`clear_user`]`(dst, n)`         | bytes **not** cleared                                         |
//! | [`strncpy_from_user`]`(dst, src)`| `Ok(len)` without the NUL, `Ok(dst.len())` if no NUL within it, or `Err(Efault)` |
//! | [`copy_from_kernel_nofault`]`(dst, src)` | `Ok(())` or `Err(Efault)` (Linux's `probe_kernel_read`) |
//!
//! A copy that faults midway has copied every byte before the faulting one: the counts are
//! exact (a fast bulk copy, and on a fault a byte-wise retry of the rest up to the faulting
//! byte, like Linux's `copy_user_handle_tail`). `get_user`/`put_user` work on
//! [`u8`], [`u16`], [`u32`], [`u64`] and [`usize`] ([`UserWord`]).
//!
//! # The user range
//!
//! User addresses are [`UserPtr`]s: addresses, never dereferenced by Rust code. Every
//! function but `copy_from_kernel_nofault` first checks the whole range with [`access_ok`]
//! against the user range and refuses a range that leaves it **before any access**: a user
//! pointer into the kernel never reads or writes kernel memory.
//!
//! There is no default range: until the kernel (or a hosted program) establishes one with
//! the `unsafe` [`set_user_range`] or [`set_user_limit`], the range is empty and every
//! user-access function fails with [`Efault`] (or its "nothing copied" count) without touching
//! memory. Establishing it is the one `unsafe` step, and its contract is what makes the safe
//! functions sound: the range must hold no memory that Rust code references (true of user
//! mappings in a kernel; hosted programs use pages they map for the purpose).
//! [`DEFAULT_USER_LIMIT`] is Linux's `TASK_SIZE_MAX` for the target (x86_64
//! `0x7fff_ffff_f000`, ARM `0xbf00_0000`, AArch64 `1 << 48`), for kernels whose own memory
//! lies above it.
//!
//! # x86_64 SMAP
//!
//! With CR4.SMAP set, the CPU faults on kernel accesses to user pages unless RFLAGS.AC is
//! set. The user-access functions bracket their accesses with `STAC`/`CLAC` when
//! [`arch::set_smap`]`(true)` was called (x86_64 only). It is off by default, because `STAC`
//! is an invalid opcode on CPUs without SMAP and at CPL 3 (hosted tests): a kernel that sets
//! CR4.SMAP calls `set_smap(true)` once. `copy_from_kernel_nofault` never sets AC.
//!
//! # The macros
//!
//! [`asm!`](crate::asm!) wraps `core::arch::asm!` with `[ex]` marks on the instructions that
//! may fault; [`extable`](crate::extable) makes a fault the error return of a function;
//! [`handler`](crate::handler) checks a custom handler's signature. A fault at a marked
//! instruction hands back a [`Fault`].

mod fault;

#[cfg(any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64"))]
mod primitives;

use core::fmt;
use core::marker::PhantomData;
use core::ops::Range;
use core::sync::atomic::{AtomicUsize, Ordering};

pub use fault::Fault;

#[cfg(any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64"))]
pub use primitives::{
    arch, clear_user, copy_from_kernel_nofault, copy_from_user, copy_to_user, get_user, put_user,
    strncpy_from_user, UserWord, DEFAULT_USER_LIMIT,
};

/// Wrap `core::arch::asm!` with `[ex]` marks: every marked instruction gets an
/// `__ex_table` entry, so a fault there is fixed instead of crashing.
///
/// Takes everything `core::arch::asm!` takes. A template line that starts with a mark
/// covers the one instruction on it:
///
/// * `[ex]` resumes at the block's fixup: the Rust block of a label operand named `fixup`
///   (`fixup = label { ... }`, for blocks without outputs), or else an out-of-line stub that
///   resumes after the block, which then evaluates to `Result<(), Fault>` (outputs hold
///   what their registers held at the fault);
/// * `[ex => 3f]` resumes at the template's local label `3` (`3f`/`3b`);
/// * `[ex => {name}]` resumes at an operand (a `label` or a `sym`).
///
/// `handler = default | fault | uaccess | efault::<ERR, ZERO> | path::to::handler` picks the
/// handler of every entry of the block (default: record the trap for the [`Fault`], or
/// [`handlers::default`](crate::handlers::default) when no `[ex]` mark resumes at the stub).
/// The registers a built-in handler writes become clobbers of the block unless it declares
/// them as outputs; a custom handler may write only registers the block declares.
/// Without any `[ex]` mark (explicit targets or a `fixup` label only) the value is that of
/// `asm!`.
///
/// ```no_run
/// # #[cfg(target_arch = "x86_64")]
/// fn read_u64(addr: usize) -> Result<u64, extable_runtime::Fault> {
///     let value: u64;
///     // SAFETY: the load may fault; its entry recovers it and the block returns `Err`.
///     unsafe {
///         extable_runtime::asm!(
///             "[ex] mov {v}, qword ptr [{p}]",
///             p = in(reg) addr,
///             v = out(reg) value,
///             options(nostack),
///         )
///     }?;
///     Ok(value)
/// }
/// ```
///
/// With `#[extable]` the standard `asm!` takes the marks and a fault returns from the
/// function:
///
/// ```no_run
/// # #[cfg(target_arch = "x86_64")]
/// #[extable_runtime::extable]
/// fn read_u64(addr: usize) -> Result<u64, extable_runtime::uaccess::Efault> {
///     let value: u64;
///     // SAFETY: the load may fault; a fault returns `Err(Efault::from(fault))`.
///     unsafe { core::arch::asm!("[ex] mov {v}, qword ptr [{p}]", p = in(reg) addr, v = out(reg) value) };
///     Ok(value)
/// }
/// ```
#[macro_export]
macro_rules! asm {
    ($($args:tt)*) => {
        $crate::uaccess::__private::__asm!($crate; $($args)*)
    };
}

/// Support for the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::fault::{record, FaultRecord};
    pub use extable_macros::__asm;
}

/// The error of a refused or faulting user access: Linux's `-EFAULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Efault;

impl Efault {
    /// The errno value, `-14`, as Linux returns it.
    pub const ERRNO: isize = crate::handlers::EFAULT;

    /// The errno value, `-14`.
    pub const fn to_errno(self) -> isize {
        Self::ERRNO
    }
}

impl From<Fault> for Efault {
    fn from(_: Fault) -> Self {
        Efault
    }
}

impl fmt::Display for Efault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bad address (EFAULT)")
    }
}

/// A user-space address of a `T`: a plain number that Rust code never dereferences, only
/// the functions of this module access it.
#[repr(transparent)]
pub struct UserPtr<T> {
    addr: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> UserPtr<T> {
    /// The user pointer at `addr`.
    pub const fn new(addr: usize) -> Self {
        UserPtr {
            addr,
            _type: PhantomData,
        }
    }

    /// The user pointer with the address of `ptr`.
    pub fn from_ptr(ptr: *const T) -> Self {
        Self::new(ptr as usize)
    }

    /// The address.
    pub const fn addr(self) -> usize {
        self.addr
    }

    /// The same address as a pointer to `U`.
    pub const fn cast<U>(self) -> UserPtr<U> {
        UserPtr::new(self.addr)
    }

    /// The address `count` `T`s further (wrapping, as addresses do; [`access_ok`] decides).
    pub const fn add(self, count: usize) -> Self {
        Self::new(
            self.addr
                .wrapping_add(count.wrapping_mul(core::mem::size_of::<T>())),
        )
    }

    /// The address `bytes` bytes further (wrapping).
    pub const fn byte_add(self, bytes: usize) -> Self {
        Self::new(self.addr.wrapping_add(bytes))
    }
}

impl<T> Clone for UserPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for UserPtr<T> {}

impl<T> PartialEq for UserPtr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl<T> Eq for UserPtr<T> {}

impl<T> fmt::Debug for UserPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserPtr({:#x})", self.addr)
    }
}

#[cfg(target_arch = "x86_64")]
const LIMIT: usize = 0x0000_7fff_ffff_f000;
#[cfg(target_arch = "arm")]
const LIMIT: usize = 0xbf00_0000;
#[cfg(target_arch = "aarch64")]
const LIMIT: usize = 1 << 48;
#[cfg(not(any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")))]
const LIMIT: usize = 0;

static USER_START: AtomicUsize = AtomicUsize::new(0);
static USER_END: AtomicUsize = AtomicUsize::new(0);

/// Set the user range to `0..limit` (Linux's `TASK_SIZE`).
///
/// # Safety
/// The new range must contain no memory that Rust code references or accesses other than
/// through this module: the user-access functions read and write anything inside it. Set it
/// at boot, before any user access (a range changed while a user access runs may be read
/// half old, half new).
pub unsafe fn set_user_limit(limit: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { set_user_range(0..limit) }
}

/// Set the user range to `range`, for kernels whose user space does not start at 0.
///
/// # Safety
/// As [`set_user_limit`].
pub unsafe fn set_user_range(range: Range<usize>) {
    USER_START.store(range.start, Ordering::Relaxed);
    USER_END.store(range.end.max(range.start), Ordering::Release);
}

/// The current user range.
pub fn user_range() -> Range<usize> {
    let end = USER_END.load(Ordering::Acquire);
    USER_START.load(Ordering::Relaxed)..end
}

/// Whether `len` bytes at `ptr` lie inside the user range (Linux's `access_ok`). A
/// zero-length range is fine anywhere inside it, including at its end. Nothing is inside an
/// empty user range (the state before [`set_user_range`]).
pub fn access_ok<T>(ptr: UserPtr<T>, len: usize) -> bool {
    let range = user_range();
    let addr = ptr.addr();
    !range.is_empty() && addr >= range.start && addr <= range.end && len <= range.end - addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ptr_arithmetic() {
        let p = UserPtr::<u32>::new(0x1000);
        assert_eq!(p.add(3).addr(), 0x100c);
        assert_eq!(p.byte_add(3).addr(), 0x1003);
        assert_eq!(p.cast::<u8>().addr(), 0x1000);
        assert_eq!(UserPtr::<u8>::new(usize::MAX).add(1).addr(), 0);
    }

    #[test]
    fn efault_is_minus_14() {
        assert_eq!(Efault.to_errno(), -14);
        assert_eq!(Efault::from(Fault::new(None)), Efault);
    }
}
