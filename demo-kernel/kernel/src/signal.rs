//! Signals for the user task: numbers and codes as in Linux, and `force_sig`, which reports
//! the signal and kills (reaps) the task; the kernel goes on.

use crate::println;
use crate::task;

/// Illegal instruction.
pub const SIGILL: u32 = 4;
/// Bus error.
#[allow(dead_code)] // raised by the ARM kernel only
pub const SIGBUS: u32 = 7;
/// Segmentation violation.
pub const SIGSEGV: u32 = 11;

/// `si_code` for SIGSEGV: address not mapped to an object.
pub const SEGV_MAPERR: u32 = 1;
/// `si_code` for SIGSEGV: invalid permissions for a mapped object.
pub const SEGV_ACCERR: u32 = 2;
/// `si_code` for SIGBUS: invalid address alignment.
#[allow(dead_code)] // raised by the ARM kernel only
pub const BUS_ADRALN: u32 = 1;
/// `si_code` for SIGBUS: nonexistent physical address.
#[allow(dead_code)] // raised by the ARM kernel only
pub const BUS_ADRERR: u32 = 2;
/// `si_code` for SIGILL: illegal opcode.
pub const ILL_ILLOPC: u32 = 1;
/// `si_code` sent by the kernel itself (Linux's `SI_KERNEL`, e.g. a #GP in user mode).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only x86_64 sends it (#GP)
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

/// Deliver `info` to the current user task: no handlers exist, so the default action kills
/// it. Prints `signal N (code C) at ADDR`, then returns to the kernel code that started the
/// task ([`task::run`] returns `Killed`).
pub fn force_sig(info: SigInfo) -> ! {
    println!(
        "signal {} (code {}) at {:#x}: killing the task",
        info.signo, info.code, info.addr
    );
    task::kill_current(info)
}
