//! The ucontext of each architecture, converted to and from its `PtRegs` frame so that the
//! handlers' register logic (Thumb state, IT bits, register numbering) exists once, in
//! [`crate::arch`].

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "arm")]
mod arm;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(super) use aarch64::{frame, trap, write_back};
#[cfg(target_arch = "arm")]
pub(super) use arm::{frame, trap, write_back};
#[cfg(target_arch = "x86_64")]
pub(super) use x86_64::{frame, trap, write_back};

use crate::trap::FaultKind;

/// `si_code` of a SIGSEGV on an address with no mapping (Linux's `SEGV_MAPERR`).
const SEGV_MAPERR: libc::c_int = 1;
/// `si_code` of a SIGSEGV on a mapping that forbids the access (Linux's `SEGV_ACCERR`).
const SEGV_ACCERR: libc::c_int = 2;

/// The fault class a signal and its `si_code` describe.
pub(super) fn kind_from_signal(sig: libc::c_int, code: libc::c_int) -> FaultKind {
    match (sig, code) {
        (libc::SIGBUS, _) => FaultKind::Bus,
        (_, SEGV_ACCERR) => FaultKind::Permission,
        (_, SEGV_MAPERR) => FaultKind::NotMapped,
        _ => FaultKind::Other,
    }
}

/// The fault address of a `SIGSEGV`/`SIGBUS`.
pub(super) fn fault_address(info: &libc::siginfo_t) -> usize {
    // SAFETY: for SIGSEGV and SIGBUS the kernel fills `si_addr`.
    unsafe { info.si_addr() as usize }
}
