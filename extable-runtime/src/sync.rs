//! The atomics of the module-table protocol: `core`'s, or `loom`'s when the crate is built
//! with the `loom` feature for the model check (`tests/loom.rs`).

#[cfg(feature = "loom")]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize};

#[cfg(not(feature = "loom"))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

/// One step of a wait loop: a CPU hint, or under loom a yield to the other threads.
#[inline]
pub(crate) fn spin() {
    #[cfg(feature = "loom")]
    loom::thread::yield_now();
    #[cfg(not(feature = "loom"))]
    core::hint::spin_loop();
}

/// Define a constructor that is a `const fn` except under loom, whose atomics have no
/// `const` constructors.
macro_rules! constructor {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        #[cfg(not(feature = "loom"))]
        $(#[$meta])*
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        #[cfg(feature = "loom")]
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}

pub(crate) use constructor;
