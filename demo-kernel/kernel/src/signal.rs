//! Signals for the user task: numbers and codes as in Linux, and `force_sig`, which reports
//! the signal and kills (reaps) the task; the kernel goes on.

use core::fmt;

use crate::println;
use crate::task;

/// Illegal instruction.
pub const SIGILL: u32 = 4;
/// Trace/breakpoint trap.
pub const SIGTRAP: u32 = 5;
/// Bus error.
pub const SIGBUS: u32 = 7;
/// Kill (cannot be caught; Linux's fault tables name it for faults no handler serves).
pub const SIGKILL: u32 = 9;
/// Segmentation violation.
pub const SIGSEGV: u32 = 11;

/// `si_code` for SIGSEGV: address not mapped to an object.
pub const SEGV_MAPERR: u32 = 1;
/// `si_code` for SIGSEGV: invalid permissions for a mapped object.
pub const SEGV_ACCERR: u32 = 2;
/// `si_code` for SIGBUS: invalid address alignment.
pub const BUS_ADRALN: u32 = 1;
/// `si_code` for SIGBUS: nonexistent physical address.
pub const BUS_ADRERR: u32 = 2;
/// `si_code` for SIGBUS: object-specific hardware error.
pub const BUS_OBJERR: u32 = 3;
/// `si_code` for SIGILL: illegal opcode.
pub const ILL_ILLOPC: u32 = 1;
/// `si_code` for SIGTRAP: process breakpoint.
pub const TRAP_BRKPT: u32 = 1;
/// `si_code` sent by the kernel itself (Linux's `SI_KERNEL`, e.g. a #GP in user mode).
pub const SI_KERNEL: u32 = 0x80;

/// What a signal says: number, code and the faulting address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    /// Signal number.
    pub signo: u32,
    /// `si_code`.
    pub code: u32,
    /// `si_addr`.
    pub addr: usize,
}

impl SigInfo {
    /// A signal `signo` with `code` for address `addr`.
    pub const fn new(signo: u32, code: u32, addr: usize) -> Self {
        SigInfo { signo, code, addr }
    }
}

/// The name of signal `signo` ("SIGSEGV"), or "SIG?" for one the kernel never sends.
pub fn signal_name(signo: u32) -> &'static str {
    match signo {
        SIGILL => "SIGILL",
        SIGTRAP => "SIGTRAP",
        SIGBUS => "SIGBUS",
        SIGKILL => "SIGKILL",
        SIGSEGV => "SIGSEGV",
        _ => "SIG?",
    }
}

/// The name of `si_code` `code` of signal `signo` ("SEGV_ACCERR"), or "?" when unknown.
pub fn code_name(signo: u32, code: u32) -> &'static str {
    match (signo, code) {
        (_, SI_KERNEL) => "SI_KERNEL",
        (SIGSEGV, SEGV_MAPERR) => "SEGV_MAPERR",
        (SIGSEGV, SEGV_ACCERR) => "SEGV_ACCERR",
        (SIGBUS, BUS_ADRALN) => "BUS_ADRALN",
        (SIGBUS, BUS_ADRERR) => "BUS_ADRERR",
        (SIGBUS, BUS_OBJERR) => "BUS_OBJERR",
        (SIGILL, ILL_ILLOPC) => "ILL_ILLOPC",
        (SIGTRAP, TRAP_BRKPT) => "TRAP_BRKPT",
        _ => "?",
    }
}

/// `SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x700008`: name and number, as transcripts
/// are read for both.
impl fmt::Display for SigInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) signal {} code {} addr {:#x}",
            signal_name(self.signo),
            code_name(self.signo, self.code),
            self.signo,
            self.code,
            self.addr
        )
    }
}

/// Deliver `info` to the current user task: no handlers exist, so the default action kills
/// it. Prints the signal by name and number, then returns to the kernel code that started
/// the task ([`task::run`] returns `Killed`).
pub fn force_sig(info: SigInfo) -> ! {
    println!("{}: killing the task", info);
    task::kill_current(info)
}
