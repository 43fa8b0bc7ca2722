//! powerpc: `{ int insn, fixup; }`, both self-relative (8 bytes); absolute
//! `{ unsigned long insn, fixup; }` in older kernels.

use crate::layout::Layout;

/// `EM_PPC`, `EM_PPC64`.
pub const MACHINES: &[u16] = &[object::elf::EM_PPC.0, object::elf::EM_PPC64.0];

/// The layouts of powerpc kernels (and of parisc's, which changed the same way), newest
/// first.
pub const LAYOUTS: &[Layout] = &[Layout::LinuxPowerpc, Layout::Absolute];
