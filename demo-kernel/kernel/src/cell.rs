//! Kernel-global mutable state for a single CPU.

use core::cell::UnsafeCell;

/// A global the kernel mutates from one CPU with interrupts masked (the demo kernel never
/// enables them), including from its own exception handlers.
///
/// Access goes through [`Global::with`], which hands out a `&mut T` for the duration of a
/// closure. The caller must not re-enter `with` on the same global from inside the closure,
/// nor fault inside it in a way whose handler touches the same global.
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: the kernel runs on one CPU with interrupts masked; exception handlers that touch a
// global do so only when the interrupted code is outside `with` for that global (each use site
// keeps its closures free of faulting accesses).
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    /// A global holding `value`.
    pub const fn new(value: T) -> Self {
        Global(UnsafeCell::new(value))
    }

    /// Run `f` with exclusive access to the value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: single CPU, no interrupts, no re-entry (see the type's contract).
        f(unsafe { &mut *self.0.get() })
    }
}
