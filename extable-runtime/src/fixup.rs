//! `fixup_exception`: find the entry for the faulting pc and let its handler fix the fault.

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::handlers::handler_of;
use crate::regs::ExRegs;
use crate::report::{report, Level};
use crate::table::with_exception_entry;
use crate::trap::Trap;

/// Why a fault was not fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfixed {
    /// No table has an entry for the faulting pc: a real bug, for the oops path.
    NoEntry,
    /// The entry's handler declined the fault.
    Declined,
    /// The fault happened inside a handler, or it is the last of [`MAX_FIXUP_CHAIN`] faults
    /// in a row each at the very fixup the previous one was sent to: fixing it could loop
    /// forever, so it goes on to the oops path (and is reported).
    Recursive,
    /// [`fixup_exception`] was called before a [`GuardAccessor`] was registered.
    NoGuard,
}

/// Per-CPU (or, hosted, per-thread) state that detects faults in handlers and fixups.
///
/// Each CPU (or thread) has its own: a kernel registers the accessor that finds the running
/// CPU's guard with [`set_guard_accessor`] and calls [`fixup_exception`], or passes the guard
/// itself to [`fixup_exception_with`]. Nothing in it is shared between CPUs.
#[derive(Debug, Default)]
pub struct FixupGuard {
    depth: AtomicUsize,
    last_fixup: AtomicUsize,
    chain: AtomicUsize,
}

/// How many faults in a row may each land on the fixup of the previous one.
///
/// A fixup that retries the access (Linux's byte-wise copy tail) faults at its own first
/// instruction once; a chain this long only comes from entries that send each other round
/// in a loop.
pub const MAX_FIXUP_CHAIN: usize = 8;

impl FixupGuard {
    /// A guard with no fixup in progress.
    pub const fn new() -> Self {
        FixupGuard {
            depth: AtomicUsize::new(0),
            last_fixup: AtomicUsize::new(0),
            chain: AtomicUsize::new(0),
        }
    }
}

/// Leaves the handler's nesting level on every exit path.
struct Depth<'a>(&'a AtomicUsize);

impl Drop for Depth<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Fix a fault through the exception tables, detecting recursion with `guard`.
///
/// On success the saved pc in `regs` points at the fixup (as the handler left it). The handler
/// runs inside the read section of the table holding the entry (see [`crate::table`]), so a
/// module table cannot be retired under it.
pub fn fixup_exception_with(
    guard: &FixupGuard,
    regs: &mut dyn ExRegs,
    trap: &Trap,
) -> Result<(), Unfixed> {
    let pc = regs.pc();
    if guard.depth.load(Ordering::Acquire) != 0 {
        report(
            Level::Fatal,
            format_args!("extable: fault at {pc:#x} inside an exception handler"),
        );
        return Err(Unfixed::Recursive);
    }
    let chain = if pc == guard.last_fixup.load(Ordering::Relaxed) {
        guard.chain.load(Ordering::Relaxed) + 1
    } else {
        0
    };
    let fixed = with_exception_entry(pc, |entry| {
        guard.chain.store(chain, Ordering::Relaxed);
        if chain >= MAX_FIXUP_CHAIN {
            report(
                Level::Fatal,
                format_args!(
                    "extable: fault at {pc:#x}: {chain} faults in a row in fixup code; the fixups loop"
                ),
            );
            return Err(Unfixed::Recursive);
        }
        guard.depth.fetch_add(1, Ordering::Acquire);
        let _depth = Depth(&guard.depth);
        // SAFETY: entries are emitted by the extable macros with a `Handler` in the third
        // field.
        let handler = unsafe { handler_of(entry) };
        if handler(entry, regs, trap) {
            Ok(())
        } else {
            Err(Unfixed::Declined)
        }
    })
    .unwrap_or(Err(Unfixed::NoEntry));
    fixed?;
    guard.last_fixup.store(regs.pc(), Ordering::Relaxed);
    Ok(())
}

/// Returns the guard of the CPU (or thread) it runs on.
///
/// A kernel registers one with [`set_guard_accessor`] at boot; it typically indexes a per-CPU
/// array by the CPU number (x86_64: a per-CPU segment base or the APIC id; ARM: `MPIDR` or
/// `TPIDRPRW`). It runs on the fault path: it must not fault, block or take locks.
pub type GuardAccessor = fn() -> &'static FixupGuard;

/// The registered accessor (a [`GuardAccessor`]), or null.
static ACCESSOR: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Register the function [`fixup_exception`] asks for the running CPU's guard.
///
/// Call it once at boot, before the first fault can be fixed. Each CPU must get a guard of
/// its own: a guard shared between CPUs makes concurrent fixes look like recursion.
pub fn set_guard_accessor(accessor: GuardAccessor) {
    ACCESSOR.store(accessor as *mut (), Ordering::Release);
}

/// The registered accessor, if any.
fn guard_accessor() -> Option<GuardAccessor> {
    let ptr = ACCESSOR.load(Ordering::Acquire);
    // SAFETY: the only non-null value ever stored is a `GuardAccessor` cast in
    // `set_guard_accessor`.
    (!ptr.is_null()).then(|| unsafe { core::mem::transmute::<*mut (), GuardAccessor>(ptr) })
}

/// Fix a fault through the exception tables (Linux's `fixup_exception`), with the running
/// CPU's guard as the registered [`GuardAccessor`] returns it.
///
/// `Ok(())` when the fault was fixed: returning from the exception resumes at the fixup.
/// Otherwise the caller goes on to its oops path. Without a registered accessor no fault is
/// fixed (`Err(Unfixed::NoGuard)`, reported once per fault): there is no guard that is right
/// on every CPU, and an oops is the safe outcome of a missing boot step.
pub fn fixup_exception(regs: &mut dyn ExRegs, trap: &Trap) -> Result<(), Unfixed> {
    match guard_accessor() {
        Some(accessor) => fixup_exception_with(accessor(), regs, trap),
        None => {
            report(
                Level::Fatal,
                format_args!(
                    "extable: fault at {:#x}: no per-CPU guard registered (set_guard_accessor)",
                    regs.pc()
                ),
            );
            Err(Unfixed::NoGuard)
        }
    }
}
