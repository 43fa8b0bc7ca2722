//! riscv: `{ int insn, fixup; short type, data; }` (`asm/asm-extable.h`); absolute
//! `{ unsigned long insn, fixup; }` in older kernels.

use crate::layout::Layout;

/// `EM_RISCV`.
pub const MACHINES: &[u16] = &[object::elf::EM_RISCV.0];

/// The layouts of riscv kernels, newest first.
pub const LAYOUTS: &[Layout] = &[Layout::LinuxRiscv, Layout::Absolute];

/// `EX_TYPE_*` names by number.
pub const TYPES: &[&str] = &[
    "NONE",
    "FIXUP",
    "BPF",
    "UACCESS_ERR_ZERO",
    "LOAD_UNALIGNED_ZEROPAD",
];

/// The length of the instruction whose first halfword is `first`: 2 for compressed
/// instructions (low bits not `11`), else 4 (the 48-bit and longer encodings are reserved
/// and unused by Linux; they count as 4, which only makes the walk give up sooner).
pub fn length(first: u16) -> u64 {
    if first & 0b11 != 0b11 {
        2
    } else {
        4
    }
}
