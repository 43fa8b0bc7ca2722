//! Kernel-global mutable state: one value the boot CPU owns, one value per CPU, or a list of
//! hooks handlers read.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::arch::{Arch, Current};
use crate::percpu::MAX_CPUS;

/// A global only the boot CPU touches, with interrupts masked (the demo kernel never enables
/// them), including from its own exception handlers.
///
/// Access goes through [`Global::with`], which hands out a `&mut T` for the duration of a
/// closure, and panics on any other CPU. The caller must not re-enter `with` on the same
/// global from inside the closure, nor fault inside it in a way whose handler touches the
/// same global.
// The ARMv7 and AArch64 kernels keep all their state per CPU or in atomics.
#[cfg_attr(any(target_arch = "arm", target_arch = "aarch64"), allow(dead_code))]
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: only the boot CPU ever reaches the value (`with` checks), with interrupts masked;
// exception handlers that touch a global do so only when the interrupted code is outside
// `with` for that global (each use site keeps its closures free of faulting accesses).
unsafe impl<T> Sync for Global<T> {}

#[cfg_attr(any(target_arch = "arm", target_arch = "aarch64"), allow(dead_code))]
impl<T> Global<T> {
    /// A global holding `value`.
    pub const fn new(value: T) -> Self {
        Global(UnsafeCell::new(value))
    }

    /// Run `f` with exclusive access to the value. Panics on a CPU other than the boot CPU.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        assert_eq!(
            Current::cpu_id(),
            0,
            "a boot-CPU global used on another CPU"
        );
        // SAFETY: the boot CPU only, no interrupts, no re-entry (see the type's contract).
        f(unsafe { &mut *self.0.get() })
    }
}

/// One value per CPU, each CPU touching only its own (the slot of [`Arch::cpu_id`]).
///
/// [`PerCpu::this_cpu_ptr`] gives the running CPU's slot; whoever dereferences it follows the
/// rules of [`Global::with`] for that slot: no overlapping `&mut`, and exception handlers
/// that touch it do so only when the interrupted code holds no reference to it.
pub struct PerCpu<T>(UnsafeCell<[T; MAX_CPUS]>);

// SAFETY: a CPU only ever reaches the slot of its own number (distinct per CPU, see
// `Arch::cpu_id`), with interrupts masked; no reference to the whole array is ever made.
unsafe impl<T> Sync for PerCpu<T> {}

impl<T: Copy> PerCpu<T> {
    /// Every CPU's value starts as `value`.
    pub const fn new(value: T) -> Self {
        PerCpu(UnsafeCell::new([value; MAX_CPUS]))
    }
}

impl<T: Copy> PerCpu<T> {
    /// A copy of this CPU's value.
    pub fn get(&self) -> T {
        // SAFETY: this CPU's slot, read by value; no reference to it outlives the read.
        unsafe { *self.this_cpu_ptr() }
    }

    /// Replace this CPU's value.
    pub fn set(&self, value: T) {
        // SAFETY: this CPU's slot, written by value; no reference to it outlives the write.
        unsafe { *self.this_cpu_ptr() = value }
    }
}

impl<T> PerCpu<T> {
    /// This CPU's value's address.
    pub fn this_cpu_ptr(&self) -> *mut T {
        // SAFETY: `cpu_id() < MAX_CPUS`: in bounds of the array.
        unsafe { (self.0.get() as *mut T).add(Current::cpu_id()) }
    }
}

/// A list of at most `N` hooks (`&'static T`) that code adds and removes at run time while
/// exception handlers read it (Linux's `undef_hook` list), without locks: each slot holds one
/// hook or none.
// x86_64 has no hook lists.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub struct HookList<T: 'static, const N: usize>([AtomicPtr<T>; N]);

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
impl<T: 'static, const N: usize> HookList<T, N> {
    /// An empty list.
    pub const fn new() -> Self {
        HookList([const { AtomicPtr::new(core::ptr::null_mut()) }; N])
    }

    /// Add `hook`; `false` when the list is full. Adding a hook twice is a no-op.
    pub fn register(&self, hook: &'static T) -> bool {
        let p = hook as *const T as *mut T;
        if self.0.iter().any(|h| h.load(Ordering::Acquire) == p) {
            return true;
        }
        self.0.iter().any(|h| {
            h.compare_exchange(
                core::ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        })
    }

    /// Remove `hook` (nothing when it is not in the list).
    pub fn unregister(&self, hook: &'static T) {
        let p = hook as *const T as *mut T;
        for h in &self.0 {
            let _ = h.compare_exchange(
                p,
                core::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// The first hook in the list for which `matches` holds.
    pub fn find(&self, matches: impl Fn(&T) -> bool) -> Option<&'static T> {
        self.0.iter().find_map(|h| {
            // SAFETY: only `&'static T`s (or null) are ever stored.
            let hook: &'static T = unsafe { h.load(Ordering::Acquire).as_ref() }?;
            matches(hook).then_some(hook)
        })
    }
}
