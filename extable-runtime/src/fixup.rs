//! `fixup_exception`: find the entry for the faulting pc and let its handler fix the fault.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::handlers::handler_of;
use crate::regs::ExRegs;
use crate::report::{report, Level};
use crate::table::search_exception_tables;
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
}

/// Per-CPU (or, hosted, per-thread) state that detects faults in handlers and fixups.
///
/// A single-CPU kernel can use the global guard behind [`fixup_exception`]; an SMP kernel or
/// a threaded program keeps one guard per CPU or thread and calls [`fixup_exception_with`].
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
/// On success the saved pc in `regs` points at the fixup (as the handler left it).
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
    let entry = search_exception_tables(pc).ok_or(Unfixed::NoEntry)?;
    let chain = if pc == guard.last_fixup.load(Ordering::Relaxed) {
        guard.chain.load(Ordering::Relaxed) + 1
    } else {
        0
    };
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
    // SAFETY: entries are emitted by the extable macros with a `Handler` in the third field.
    let handler = unsafe { handler_of(entry) };
    if !handler(entry, regs, trap) {
        return Err(Unfixed::Declined);
    }
    guard.last_fixup.store(regs.pc(), Ordering::Relaxed);
    Ok(())
}

static GLOBAL_GUARD: FixupGuard = FixupGuard::new();

/// Fix a fault through the exception tables (Linux's `fixup_exception`), for a single CPU.
///
/// Returns whether the fault was fixed; when it was, returning from the exception resumes at
/// the fixup. When it was not, the caller goes on to its oops path.
pub fn fixup_exception(regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    fixup_exception_with(&GLOBAL_GUARD, regs, trap).is_ok()
}
