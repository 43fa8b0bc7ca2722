//! Register access for handlers: a small trait over saved exception frames.

/// Register number meaning "no register" in handler parameters (Linux uses a 4-bit field and
/// has no such value; we reserve 0xff so an optional register costs nothing).
pub const NO_REG: u8 = 0xff;

/// The saved registers of a faulting context, as a handler sees them.
///
/// Register numbers are the architecture's own: on x86_64 the instruction encoding
/// (0 = rax, 1 = rcx, 2 = rdx, 3 = rbx, 4 = rsp, 5 = rbp, 6 = rsi, 7 = rdi, 8..=15 = r8..r15,
/// as Linux's `pt_regs_offset`), on ARM `r0..=r15`, on AArch64 `x0..=x30`.
/// Implemented for the bare-metal frames in [`crate::arch`] and, with the `hosted` feature,
/// for a signal's `ucontext`.
pub trait ExRegs {
    /// The saved program counter: where the faulting instruction is.
    fn pc(&self) -> usize;
    /// Rewrite the saved program counter: where execution resumes on return.
    ///
    /// On ARM an odd address selects Thumb state and the IT bits are cleared, as Linux's
    /// `fixup_exception` does for Thumb-2 kernels.
    fn set_pc(&mut self, pc: usize);
    /// Read general-purpose register `n`; `None` for a number the frame does not have.
    fn reg(&self, n: u8) -> Option<usize>;
    /// Write general-purpose register `n`; `false` (and nothing written) for a number the
    /// frame does not have.
    fn set_reg(&mut self, n: u8, value: usize) -> bool;
    /// The register that carries a function's return value (rax, r0, x0).
    fn return_reg(&self) -> u8;
}
