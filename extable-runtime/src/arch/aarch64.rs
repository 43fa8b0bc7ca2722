//! AArch64: the saved register frame, laid out like the head of Linux's arm64 `struct pt_regs`.

use crate::regs::ExRegs;

/// `x0..=x30`, then sp, pc and pstate.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PtRegs {
    /// x0..x30.
    pub regs: [u64; 31],
    /// The stack pointer of the faulting context.
    pub sp: u64,
    /// The faulting pc (ELR_EL1).
    pub pc: u64,
    /// The saved PSTATE (SPSR_EL1).
    pub pstate: u64,
}

/// Size of [`PtRegs`] in bytes, for entry stubs written in assembly.
pub const PT_REGS_SIZE: usize = core::mem::size_of::<PtRegs>();

impl ExRegs for PtRegs {
    fn pc(&self) -> usize {
        self.pc as usize
    }
    fn set_pc(&mut self, pc: usize) {
        self.pc = pc as u64;
    }
    /// Register 31 is the zero register in data-processing encodings: none here, as in
    /// Linux's `EX_DATA_REG` users.
    fn reg(&self, n: u8) -> Option<usize> {
        self.regs.get(n as usize).map(|r| *r as usize)
    }
    fn set_reg(&mut self, n: u8, value: usize) -> bool {
        self.regs
            .get_mut(n as usize)
            .map(|r| *r = value as u64)
            .is_some()
    }
    fn return_reg(&self) -> u8 {
        0
    }
}
