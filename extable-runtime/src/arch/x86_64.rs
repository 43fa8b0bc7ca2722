//! x86_64: the saved register frame, laid out as Linux's `struct pt_regs`.

use crate::regs::ExRegs;

/// x86 trap numbers used by handlers and kernels (Linux's `X86_TRAP_*`).
pub mod trap {
    /// Divide error (#DE).
    pub const DE: u32 = 0;
    /// Invalid opcode (#UD).
    pub const UD: u32 = 6;
    /// Double fault (#DF).
    pub const DF: u32 = 8;
    /// General protection (#GP).
    pub const GP: u32 = 13;
    /// Page fault (#PF).
    pub const PF: u32 = 14;
}

/// The register frame an `idtentry` stub saves: general registers pushed by software, then
/// `orig_rax` (the error code, or -1), then the hardware frame `iretq` pops.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct PtRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// The error code the CPU pushed, or -1 for vectors without one.
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Size of [`PtRegs`] in bytes, for entry stubs written in assembly.
pub const PT_REGS_SIZE: usize = core::mem::size_of::<PtRegs>();

impl PtRegs {
    /// The field for register number `n` in instruction encoding, as Linux's `pt_regs_offset`.
    fn slot(&mut self, n: u8) -> Option<&mut u64> {
        Some(match n {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            4 => &mut self.rsp,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            15 => &mut self.r15,
            _ => return None,
        })
    }

    /// Whether the frame was saved in user mode (CPL 3).
    pub fn user_mode(&self) -> bool {
        self.cs & 3 == 3
    }
}

impl ExRegs for PtRegs {
    fn pc(&self) -> usize {
        self.rip as usize
    }
    fn set_pc(&mut self, pc: usize) {
        self.rip = pc as u64;
    }
    fn reg(&self, n: u8) -> Option<usize> {
        self.clone().slot(n).map(|r| *r as usize)
    }
    fn set_reg(&mut self, n: u8, value: usize) -> bool {
        self.slot(n).map(|r| *r = value as u64).is_some()
    }
    fn return_reg(&self) -> u8 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_linux_pt_regs() {
        assert_eq!(PT_REGS_SIZE, 21 * 8);
        assert_eq!(core::mem::offset_of!(PtRegs, orig_rax), 15 * 8);
        assert_eq!(core::mem::offset_of!(PtRegs, rip), 16 * 8);
    }

    #[test]
    fn registers_by_encoding() {
        let mut r = PtRegs::default();
        assert!(r.set_reg(2, 7));
        assert_eq!(r.rdx, 7);
        assert!(r.set_reg(15, 9));
        assert_eq!(r.r15, 9);
        assert!(!r.set_reg(16, 1));
        assert_eq!(r.reg(2), Some(7));
    }
}
