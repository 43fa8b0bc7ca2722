//! Where the runtime's warnings and fatal reports go.
//!
//! The runtime has no console of its own: a kernel installs its printer with
//! [`set_reporter`], the hosted backend installs one that writes to standard error.
//! Without a reporter, messages are dropped but still counted.

use core::fmt;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// How serious a report is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something a developer should look at; execution goes on (Linux's `WARN`).
    Warning,
    /// The fault cannot be fixed safely and goes on to the oops path.
    Fatal,
}

/// A function that prints one report line.
pub type Reporter = fn(Level, fmt::Arguments<'_>);

static REPORTER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static WARNINGS: AtomicUsize = AtomicUsize::new(0);
static FATALS: AtomicUsize = AtomicUsize::new(0);

/// Install the function that prints the runtime's reports. It may be called from a fault
/// handler or a signal handler, so it must not fault and must not take locks a faulting
/// context could hold.
pub fn set_reporter(reporter: Reporter) {
    REPORTER.store(reporter as *mut (), Ordering::Release);
}

/// Install `reporter` unless a reporter is installed already (used by backends that have a
/// sensible default, such as the hosted one's standard error).
pub fn set_default_reporter(reporter: Reporter) {
    let _ = REPORTER.compare_exchange(
        core::ptr::null_mut(),
        reporter as *mut (),
        Ordering::AcqRel,
        Ordering::Acquire,
    );
}

/// Emit one report through the installed reporter and count it.
pub fn report(level: Level, args: fmt::Arguments<'_>) {
    match level {
        Level::Warning => WARNINGS.fetch_add(1, Ordering::Relaxed),
        Level::Fatal => FATALS.fetch_add(1, Ordering::Relaxed),
    };
    let ptr = REPORTER.load(Ordering::Acquire);
    if !ptr.is_null() {
        // SAFETY: the only non-null value ever stored is a `Reporter` cast in `set_reporter`.
        let reporter: Reporter = unsafe { core::mem::transmute::<*mut (), Reporter>(ptr) };
        reporter(level, args);
    }
}

/// How many warnings have been reported since start.
pub fn warning_count() -> usize {
    WARNINGS.load(Ordering::Relaxed)
}

/// How many fatal reports have been made since start.
pub fn fatal_count() -> usize {
    FATALS.load(Ordering::Relaxed)
}
