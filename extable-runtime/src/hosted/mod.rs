//! Hosted backend: recover real `SIGSEGV` and `SIGBUS` in Linux user space through the same
//! tables and handlers a kernel uses.
//!
//! [`install`] installs signal handlers (`sigaction` with `SA_SIGINFO`, on an alternate
//! stack). On a fault, the faulting pc from the `ucontext` goes through
//! [`crate::fixup_exception_with`]; the handler's changes to pc and
//! registers are written back into the `ucontext`, so returning from the signal resumes at
//! the fixup. Without an entry, the previously installed handler runs, or the default action
//! is restored and the fault repeats: a real crash stays a crash.
//!
//! Supported: Linux on x86_64, ARMv7 (A32 and T32) and AArch64.

mod arch;

use core::cell::Cell;
use core::fmt::{self, Write as _};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, Ordering};
use std::cell::UnsafeCell;

use crate::fixup::{fixup_exception_with, FixupGuard};
use crate::report::{self, Level};

/// The signals the backend recovers.
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Size of each thread's alternate signal stack.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// Why [`install`] failed.
#[derive(Debug)]
pub enum InstallError {
    /// `sigaction` failed for the named signal.
    Sigaction(libc::c_int, std::io::Error),
    /// The alternate signal stack could not be mapped or installed.
    AltStack(std::io::Error),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Sigaction(sig, e) => write!(f, "sigaction({sig}) failed: {e}"),
            InstallError::AltStack(e) => write!(f, "alternate signal stack: {e}"),
        }
    }
}

impl std::error::Error for InstallError {}

/// The handlers that were installed before ours, to chain to on a fault we cannot fix.
struct PreviousActions(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);

// SAFETY: written once under the `STATE` transition to `INSTALLING`, before the handlers that
// read it are installed; read-only afterwards.
unsafe impl Sync for PreviousActions {}

static PREVIOUS: PreviousActions = PreviousActions(UnsafeCell::new([MaybeUninit::uninit(); 2]));

const NOT_INSTALLED: u8 = 0;
const INSTALLING: u8 = 1;
const INSTALLED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

std::thread_local! {
    static GUARD: FixupGuard = const { FixupGuard::new() };
    static HAS_ALT_STACK: Cell<bool> = const { Cell::new(false) };
}

/// Install the `SIGSEGV`/`SIGBUS` handlers (once per process) and an alternate signal stack
/// for the calling thread (once per thread). Call it in every thread that may fault; a
/// thread without its own alternate stack handles faults on its normal stack.
///
/// Also installs a reporter that writes the runtime's reports to standard error, unless one
/// is installed already.
pub fn install() -> Result<(), InstallError> {
    install_alt_stack()?;
    match STATE.compare_exchange(
        NOT_INSTALLED,
        INSTALLING,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {}
        Err(_) => {
            while STATE.load(Ordering::Acquire) != INSTALLED {
                core::hint::spin_loop();
            }
            return Ok(());
        }
    }
    report::set_default_reporter(write_report);
    for (i, &sig) in SIGNALS.iter().enumerate() {
        // SAFETY: we are the only writer (STATE is INSTALLING); the slot is plain data.
        let previous = unsafe { &mut (*PREVIOUS.0.get())[i] };
        if let Err(e) = set_handler(sig, previous) {
            STATE.store(NOT_INSTALLED, Ordering::Release);
            return Err(InstallError::Sigaction(sig, e));
        }
    }
    STATE.store(INSTALLED, Ordering::Release);
    Ok(())
}

/// Install `on_fault` for `sig`, saving the previous action into `previous`.
fn set_handler(
    sig: libc::c_int,
    previous: &mut MaybeUninit<libc::sigaction>,
) -> Result<(), std::io::Error> {
    // SAFETY: a zeroed sigaction is a valid starting value; every field we rely on is set.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `sa_mask` is a valid sigset_t to initialise; `sigaction` gets valid pointers.
    let rc = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, previous.as_mut_ptr())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Give the calling thread an alternate signal stack, unless it has one.
fn install_alt_stack() -> Result<(), InstallError> {
    if HAS_ALT_STACK.with(Cell::get) {
        return Ok(());
    }
    // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
    let stack = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            ALT_STACK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(InstallError::AltStack(std::io::Error::last_os_error()));
    }
    let ss = libc::stack_t {
        ss_sp: stack,
        ss_flags: 0,
        ss_size: ALT_STACK_SIZE,
    };
    // SAFETY: `ss` describes the mapping made above, which is never unmapped (a thread's
    // alternate stack must outlive every signal delivered to it).
    if unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) } != 0 {
        return Err(InstallError::AltStack(std::io::Error::last_os_error()));
    }
    HAS_ALT_STACK.with(|h| h.set(true));
    Ok(())
}

/// The signal handler: fix the fault through the tables, or pass it on.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel hands an SA_SIGINFO handler valid siginfo and ucontext pointers for
    // the duration of the call.
    let (info, uc) = unsafe { (&*info, &mut *(context as *mut libc::ucontext_t)) };
    let trap = arch::trap(sig, info, uc);
    let mut regs = arch::frame(uc);
    let fixed = GUARD
        .try_with(|guard| fixup_exception_with(guard, &mut regs, &trap).is_ok())
        .unwrap_or(false);
    if fixed {
        arch::write_back(&regs, uc);
    } else {
        pass_on(sig, info, context);
    }
}

/// Run the handler that was installed before ours; for the default action (or an ignored
/// signal, which would make the fault repeat forever) restore it, so that returning re-runs
/// the faulting instruction and the process dies as it would have without us.
fn pass_on(sig: libc::c_int, info: *const libc::siginfo_t, context: *mut libc::c_void) {
    let index = SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    // SAFETY: PREVIOUS was filled before our handler was installed and is read-only now.
    let previous = unsafe { (*PREVIOUS.0.get())[index].assume_init_ref() };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: resetting a signal to its default action is always valid.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous owner installed this as an SA_SIGINFO handler.
        let f: extern "C" fn(libc::c_int, *const libc::siginfo_t, *mut libc::c_void) =
            unsafe { core::mem::transmute(handler) };
        f(sig, info, context);
    } else {
        // SAFETY: the previous owner installed this as a plain handler.
        let f: extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(handler) };
        f(sig);
    }
}

/// A fixed buffer to format a report without allocating (we may be in a signal handler).
struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The hosted reporter: one line on standard error, with `write(2)` only.
fn write_report(level: Level, args: fmt::Arguments<'_>) {
    let mut line = LineBuf {
        buf: [0; 256],
        len: 0,
    };
    let _ = match level {
        Level::Warning => line.write_str("WARNING: "),
        Level::Fatal => line.write_str("FATAL: "),
    };
    let _ = line.write_fmt(args);
    line.buf[line.len] = b'\n';
    // SAFETY: the buffer is valid for `len + 1` bytes; write(2) is async-signal-safe.
    unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len + 1) };
}
