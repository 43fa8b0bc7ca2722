//! AArch64 Linux: `mcontext_t` <-> [`PtRegs`].

use crate::arch::aarch64::PtRegs;
use crate::trap::Trap;

use super::{fault_address, kind_from_signal};

/// The trap, from the signal (the ESR record in `__reserved` is not decoded).
pub(crate) fn trap(sig: libc::c_int, info: &libc::siginfo_t, _uc: &libc::ucontext_t) -> Trap {
    Trap::new(sig as u32, kind_from_signal(sig, info.si_code))
        .with_error_code(info.si_code as u64)
        .with_address(fault_address(info))
}

/// The saved registers as a `PtRegs` frame.
pub(crate) fn frame(uc: &libc::ucontext_t) -> PtRegs {
    let mc = &uc.uc_mcontext;
    PtRegs {
        regs: mc.regs,
        sp: mc.sp,
        pc: mc.pc,
        pstate: mc.pstate,
    }
}

/// Write x0..x30, sp and pc back.
pub(crate) fn write_back(regs: &PtRegs, uc: &mut libc::ucontext_t) {
    let mc = &mut uc.uc_mcontext;
    mc.regs = regs.regs;
    mc.sp = regs.sp;
    mc.pc = regs.pc;
}
