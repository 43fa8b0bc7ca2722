//! MIPS: absolute `{ unsigned long insn, fixup; }`.

/// `EM_MIPS`.
pub const MACHINES: &[u16] = &[object::elf::EM_MIPS.0];
