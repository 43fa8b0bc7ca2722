//! powerpc: `{ int insn, fixup; }`, both self-relative (8 bytes).

/// `EM_PPC`, `EM_PPC64`.
pub const MACHINES: &[u16] = &[object::elf::EM_PPC.0, object::elf::EM_PPC64.0];
