//! arm64: `{ int insn, fixup; short type, data; }` since 5.16 (`asm/asm-extable.h`).

/// `EM_AARCH64`.
pub const MACHINES: &[u16] = &[object::elf::EM_AARCH64.0];

/// `EX_TYPE_*` names by number. 5.16-6.0 had FIXUP=1, BPF=2, UACCESS_ERR_ZERO=3,
/// LOAD_UNALIGNED_ZEROPAD=4; later kernels renumbered (BPF=1, UACCESS_ERR_ZERO=2,
/// KACCESS_ERR_ZERO=3, ...). Any of 1..=5 is a type some kernel handles.
pub const TYPES: &[&str] = &[
    "NONE",
    "FIXUP|BPF",
    "BPF|UACCESS_ERR_ZERO",
    "UACCESS_ERR_ZERO|KACCESS_ERR_ZERO",
    "LOAD_UNALIGNED_ZEROPAD",
    "UACCESS_CPY",
];
