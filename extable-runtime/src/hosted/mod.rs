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
//! A signal sent by a process (`kill`, `pthread_kill`, `raise`, `sigqueue`: `si_code <= 0`)
//! is not a fault, wherever it lands: it goes to the previous disposition with the effect it
//! would have had without the backend (the default action kills the process). Handlers run
//! with `SA_NODEFER`, so a fault inside the handler reaches it again and is reported as
//! recursive before the process dies of it (a blocked `SIGSEGV` would kill it silently).
//! Each thread's recursion guard is its own ([`fixup_exception`](crate::fixup_exception)
//! finds it through the accessor [`install`] registers).
//!
//! Supported: Linux on x86_64, ARMv7 (A32 and T32) and AArch64.

mod arch;

use core::cell::Cell;
use core::fmt::{self, Write as _};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
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

/// The handlers that were installed before ours, to chain to on a signal we do not fix.
struct PreviousActions(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);

// SAFETY: slot `i` is written only by the one `install` that moved `STATE` to `INSTALLING`,
// before `SAVED[i]` is set and before our handler is installed for that signal; the handler
// reads it only after seeing `SAVED[i]` (acquire).
unsafe impl Sync for PreviousActions {}

static PREVIOUS: PreviousActions = PreviousActions(UnsafeCell::new([MaybeUninit::uninit(); 2]));
static SAVED: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];

const NOT_INSTALLED: u8 = 0;
const INSTALLING: u8 = 1;
const INSTALLED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

std::thread_local! {
    static GUARD: FixupGuard = const { FixupGuard::new() };
    static ALT_STACK: AltStack = const { AltStack { map: Cell::new(None) } };
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    static FIXED: Cell<usize> = const { Cell::new(0) };
}

/// How many faults the backend has fixed on the calling thread: lets a program (or a test)
/// see how many faults an operation took.
pub fn faults_fixed_on_this_thread() -> usize {
    FIXED.with(Cell::get)
}

/// The calling thread's guard, for [`crate::fixup_exception`].
fn thread_guard() -> &'static FixupGuard {
    // SAFETY: the reference is only used by `fixup_exception` on this thread, during the
    // fault it fixes: the thread, and so its thread-local guard, outlives that use.
    GUARD.with(|g| unsafe { &*(g as *const FixupGuard) })
}

/// Install the `SIGSEGV`/`SIGBUS` handlers (once per process) and an alternate signal stack
/// for the calling thread (once per thread, with a guard page below it; unmapped when the
/// thread exits). Call it in every thread that may fault; a thread without an alternate stack
/// handles faults on its normal stack. A thread that has an alternate stack already (the
/// Rust runtime gives one to each thread it starts) keeps it.
///
/// Idempotent and safe to call from several threads at once. On an error the process is left
/// as it was: no handler of ours is installed and the calling thread's alternate stack is
/// unchanged.
///
/// Also registers a per-thread guard accessor for [`crate::fixup_exception`] and a reporter
/// that writes the runtime's reports to standard error, unless one is installed already.
pub fn install() -> Result<(), InstallError> {
    install_alt_stack()?;
    loop {
        match STATE.compare_exchange(
            NOT_INSTALLED,
            INSTALLING,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => break,
            Err(INSTALLED) => return Ok(()),
            // Another thread is installing: wait for its outcome, and try ourselves if it
            // failed.
            Err(_) => core::hint::spin_loop(),
        }
    }
    report::set_default_reporter(write_report);
    crate::fixup::set_guard_accessor(thread_guard);
    match install_handlers() {
        Ok(()) => {
            STATE.store(INSTALLED, Ordering::Release);
            Ok(())
        }
        Err(e) => {
            STATE.store(NOT_INSTALLED, Ordering::Release);
            Err(e)
        }
    }
}

/// Install `on_fault` for every signal, saving the previous actions first; on a failure,
/// restore the signals already switched.
fn install_handlers() -> Result<(), InstallError> {
    for (i, &sig) in SIGNALS.iter().enumerate() {
        if let Err(e) = save_previous(i, sig).and_then(|()| set_handler(sig)) {
            for (j, &done) in SIGNALS.iter().enumerate().take(i) {
                // SAFETY: slot `j` was saved above, and we are the only writer.
                let previous = unsafe { (*PREVIOUS.0.get())[j].assume_init_ref() };
                // SAFETY: re-installing an action the kernel gave us.
                unsafe { libc::sigaction(done, previous, core::ptr::null_mut()) };
            }
            return Err(InstallError::Sigaction(sig, e));
        }
    }
    Ok(())
}

/// Save the current action of `sig` into slot `i`, before ours replaces it.
fn save_previous(i: usize, sig: libc::c_int) -> Result<(), std::io::Error> {
    // SAFETY: we are the only writer (STATE is INSTALLING) and no handler of ours reads slot
    // `i` before `SAVED[i]` is set below.
    let slot = unsafe { &mut (*PREVIOUS.0.get())[i] };
    // SAFETY: a null new action only queries; the output pointer is valid.
    if unsafe { libc::sigaction(sig, core::ptr::null(), slot.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    SAVED[i].store(true, Ordering::Release);
    Ok(())
}

/// Install `on_fault` for `sig`. `SA_NODEFER`: a fault inside the handler reaches it again
/// (and is reported as recursive) instead of killing the process silently, as a blocked
/// synchronous signal does.
fn set_handler(sig: libc::c_int) -> Result<(), std::io::Error> {
    // SAFETY: a zeroed sigaction is a valid starting value; every field we rely on is set.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `sa_mask` is a valid sigset_t to initialise; `sigaction` gets valid pointers.
    let rc = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, core::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A thread's alternate signal stack mapping (guard page included), unmapped at thread exit.
struct AltStack {
    map: Cell<Option<(usize, usize)>>,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let Some((base, len)) = self.map.get() else {
            return;
        };
        let off = libc::stack_t {
            ss_sp: core::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: the thread is exiting and runs no handler now; disabling its alternate
        // stack before unmapping it leaves no dangling stack registered.
        unsafe {
            libc::sigaltstack(&off, core::ptr::null_mut());
            libc::munmap(base as *mut libc::c_void, len);
        }
    }
}

/// The page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096).max(4096)
}

/// Whether the calling thread has an alternate signal stack.
fn has_alt_stack() -> Result<bool, InstallError> {
    // SAFETY: a zeroed stack_t is a valid output buffer.
    let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
    // SAFETY: a null new stack only queries.
    if unsafe { libc::sigaltstack(core::ptr::null(), &mut current) } != 0 {
        return Err(InstallError::AltStack(std::io::Error::last_os_error()));
    }
    Ok(current.ss_flags & libc::SS_DISABLE == 0)
}

/// Give the calling thread an alternate signal stack with a guard page, unless it has one.
fn install_alt_stack() -> Result<(), InstallError> {
    if has_alt_stack()? {
        return Ok(());
    }
    let page = page_size();
    let len = ALT_STACK_SIZE + page;
    // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
    let base = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(InstallError::AltStack(std::io::Error::last_os_error()));
    }
    let ss = libc::stack_t {
        ss_sp: (base as usize + page) as *mut libc::c_void,
        ss_flags: 0,
        ss_size: ALT_STACK_SIZE,
    };
    // SAFETY: the lowest page of our fresh mapping becomes the guard page; `ss` describes
    // the rest, which stays mapped until the thread exits (`AltStack::drop`).
    let failed = unsafe {
        libc::mprotect(base, page, libc::PROT_NONE) != 0
            || libc::sigaltstack(&ss, core::ptr::null_mut()) != 0
    };
    if failed {
        let e = std::io::Error::last_os_error();
        // SAFETY: the mapping is ours and not in use.
        unsafe { libc::munmap(base, len) };
        return Err(InstallError::AltStack(e));
    }
    ALT_STACK.with(|s| s.map.set(Some((base as usize, len))));
    Ok(())
}

/// Whether a signal was sent by a process (`kill`, `tgkill`, `sigqueue`: `si_code <= 0`)
/// rather than raised by the CPU for a fault.
fn sent_by_a_process(info: &libc::siginfo_t) -> bool {
    info.si_code <= 0
}

/// Clears the thread's "inside the handler" mark on every exit path.
struct Inside;

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = IN_HANDLER.try_with(|h| h.set(false));
    }
}

/// The signal handler: fix the fault through the tables, or pass it on.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel hands an SA_SIGINFO handler valid siginfo and ucontext pointers for
    // the duration of the call.
    let (info_ref, uc) = unsafe { (&*info, &mut *(context as *mut libc::ucontext_t)) };
    if sent_by_a_process(info_ref) {
        return pass_on(sig, info, context, true);
    }
    let mut regs = arch::frame(uc);
    if IN_HANDLER.try_with(|h| h.replace(true)).unwrap_or(true) {
        report::report(
            Level::Fatal,
            format_args!(
                "extable: recursive fault at {:#x} inside the fault handler",
                crate::ExRegs::pc(&regs)
            ),
        );
        return die(sig);
    }
    let _inside = Inside;
    let trap = arch::trap(sig, info_ref, uc);
    let fixed = GUARD
        .try_with(|guard| fixup_exception_with(guard, &mut regs, &trap).is_ok())
        .unwrap_or(false);
    if fixed {
        let _ = FIXED.try_with(|n| n.set(n.get() + 1));
        arch::write_back(&regs, uc);
    } else {
        pass_on(sig, info, context, false);
    }
}

/// Restore the default action of `sig`: the faulting instruction runs again on return and
/// the process dies of the signal, as it would have without us.
fn die(sig: libc::c_int) {
    // SAFETY: resetting a signal to its default action is always valid.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Give the signal to the handler that was installed before ours, with the effect it would
/// have had without us: a previous handler runs; the default action is restored and, for a
/// signal sent by a process (nothing will fault again), the signal raised again so that it
/// takes effect; an ignored sent signal is dropped.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void, sent: bool) {
    let index = SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    if !SAVED[index].load(Ordering::Acquire) {
        // Cannot happen (our handler is installed after the save); the safe outcome is the
        // default action.
        return die(sig);
    }
    // SAFETY: slot `index` was written before `SAVED[index]` was set and is read-only now.
    let previous = unsafe { (*PREVIOUS.0.get())[index].assume_init_ref() };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        if handler == libc::SIG_IGN && sent {
            return;
        }
        die(sig);
        if sent {
            // SAFETY: raise is async-signal-safe; with the default action restored and
            // SA_NODEFER, the signal takes effect now.
            unsafe { libc::raise(sig) };
        }
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous owner installed this as an SA_SIGINFO handler.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
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
