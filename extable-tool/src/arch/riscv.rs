//! riscv: `{ int insn, fixup; short type, data; }` (`asm/asm-extable.h`).

/// `EM_RISCV`.
pub const MACHINES: &[u16] = &[object::elf::EM_RISCV.0];

/// `EX_TYPE_*` names by number.
pub const TYPES: &[&str] = &[
    "NONE",
    "FIXUP",
    "BPF",
    "UACCESS_ERR_ZERO",
    "LOAD_UNALIGNED_ZEROPAD",
];
