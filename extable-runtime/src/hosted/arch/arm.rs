//! ARMv7 Linux: `mcontext_t` <-> [`PtRegs`] (r0..r15 then CPSR, contiguous in both).

use crate::arch::arm::PtRegs;
use crate::trap::Trap;

use super::{fault_address, kind_from_signal};

// r0..r10, fp, ip, sp, lr, pc, cpsr are 17 consecutive words in `mcontext_t`.
const _: () = assert!(
    core::mem::offset_of!(libc::mcontext_t, arm_cpsr)
        - core::mem::offset_of!(libc::mcontext_t, arm_r0)
        == 16 * 4
);

fn words(mc: &libc::mcontext_t) -> &[libc::c_ulong; 17] {
    // SAFETY: the 17 fields from arm_r0 to arm_cpsr are consecutive c_ulongs of a repr(C)
    // struct (checked above), so they form an array.
    unsafe { &*(&mc.arm_r0 as *const libc::c_ulong as *const [libc::c_ulong; 17]) }
}

fn words_mut(mc: &mut libc::mcontext_t) -> &mut [libc::c_ulong; 17] {
    // SAFETY: as in `words`; the borrow of `mc` is exclusive.
    unsafe { &mut *(&mut mc.arm_r0 as *mut libc::c_ulong as *mut [libc::c_ulong; 17]) }
}

/// The trap: the kernel's trap number and FSR-based error code.
pub(crate) fn trap(sig: libc::c_int, info: &libc::siginfo_t, uc: &libc::ucontext_t) -> Trap {
    Trap::new(sig as u32, kind_from_signal(sig, info.si_code))
        .with_error_code(uc.uc_mcontext.error_code as u64)
        .with_address(fault_address(info))
}

/// The saved registers as a `PtRegs` frame. (`c_ulong` is `u32` here; the casts name the
/// width the frame stores.)
#[allow(clippy::unnecessary_cast)]
pub(crate) fn frame(uc: &libc::ucontext_t) -> PtRegs {
    let mut regs = PtRegs::default();
    for (dst, src) in regs.uregs.iter_mut().zip(words(&uc.uc_mcontext)) {
        *dst = *src as u32;
    }
    regs
}

/// Write r0..r15 and CPSR (Thumb and IT bits) back.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn write_back(regs: &PtRegs, uc: &mut libc::ucontext_t) {
    for (dst, src) in words_mut(&mut uc.uc_mcontext).iter_mut().zip(&regs.uregs) {
        *dst = *src as libc::c_ulong;
    }
}
