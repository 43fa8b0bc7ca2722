//! ARMv7-A (A32 and T32): the saved register frame, laid out as Linux's ARM `struct pt_regs`.

use crate::regs::ExRegs;

/// CPSR Thumb state bit.
pub const PSR_T_BIT: u32 = 1 << 5;
/// CPSR If-Then state bits (Linux's `PSR_IT_MASK`).
pub const PSR_IT_MASK: u32 = 0x0600_fc00;
/// CPSR mode field.
pub const MODE_MASK: u32 = 0x1f;
/// CPSR mode value of user mode.
pub const USR_MODE: u32 = 0x10;

/// `uregs[0..=15]` are r0–r15 (r13 = sp, r14 = lr, r15 = pc), then CPSR and `orig_r0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PtRegs {
    /// r0..r15, cpsr, orig_r0.
    pub uregs: [u32; 18],
}

/// Size of [`PtRegs`] in bytes, for entry stubs written in assembly.
pub const PT_REGS_SIZE: usize = core::mem::size_of::<PtRegs>();

impl PtRegs {
    /// The saved CPSR.
    pub fn cpsr(&self) -> u32 {
        self.uregs[16]
    }
    /// Replace the saved CPSR.
    pub fn set_cpsr(&mut self, cpsr: u32) {
        self.uregs[16] = cpsr;
    }
    /// Whether the faulting code ran in Thumb state.
    pub fn thumb_mode(&self) -> bool {
        self.cpsr() & PSR_T_BIT != 0
    }
    /// Whether the frame was saved in user mode.
    pub fn user_mode(&self) -> bool {
        self.cpsr() & MODE_MASK == USR_MODE
    }
}

impl ExRegs for PtRegs {
    fn pc(&self) -> usize {
        self.uregs[15] as usize
    }
    /// An odd address selects Thumb state; the IT bits are always cleared, as Linux does
    /// before resuming in a fixup.
    fn set_pc(&mut self, pc: usize) {
        let mut cpsr = self.cpsr() & !PSR_IT_MASK;
        if pc & 1 != 0 {
            cpsr |= PSR_T_BIT;
        }
        self.set_cpsr(cpsr);
        self.uregs[15] = (pc & !1) as u32;
    }
    fn reg(&self, n: u8) -> Option<usize> {
        (n < 16).then(|| self.uregs[n as usize] as usize)
    }
    fn set_reg(&mut self, n: u8, value: usize) -> bool {
        (n < 16)
            .then(|| self.uregs[n as usize] = value as u32)
            .is_some()
    }
    fn return_reg(&self) -> u8 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumb_fixup_sets_t_and_clears_it_bits() {
        let mut r = PtRegs::default();
        r.set_cpsr(0x1f | PSR_IT_MASK);
        r.set_pc(0x4010_0011);
        assert_eq!(r.pc(), 0x4010_0010);
        assert!(r.thumb_mode());
        assert_eq!(r.cpsr() & PSR_IT_MASK, 0);
        assert!(!r.set_reg(16, 0));
    }
}
