//! LoongArch: absolute `{ unsigned long insn, fixup; }` in 6.1, then
//! `{ int insn, fixup; short type, data; }` from 6.2 on.

use crate::layout::Layout;

/// `EM_LOONGARCH`.
pub const MACHINES: &[u16] = &[object::elf::EM_LOONGARCH.0];

/// The layouts of LoongArch kernels, newest first.
pub const LAYOUTS: &[Layout] = &[Layout::LinuxLoongarch, Layout::Absolute];

/// `EX_TYPE_*` names by number.
pub const TYPES: &[&str] = &[
    "NONE",
    "FIXUP",
    "UACCESS_ERR_ZERO",
    "BPF",
    "LOAD_UNALIGNED_ZEROPAD",
];
