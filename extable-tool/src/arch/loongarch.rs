//! LoongArch: absolute `{ unsigned long insn, fixup; }` in 6.1, then
//! `{ int insn, fixup; short type, data; }` from 6.2 on.

/// `EM_LOONGARCH`.
pub const MACHINES: &[u16] = &[object::elf::EM_LOONGARCH.0];

/// Why a LoongArch file is not detected automatically.
pub const AMBIGUITY: &str = "LoongArch tables are absolute in Linux 6.1 and relative from 6.2; \
                             pass --layout linux-loongarch or --layout absolute";

/// `EX_TYPE_*` names by number.
pub const TYPES: &[&str] = &[
    "NONE",
    "FIXUP",
    "UACCESS_ERR_ZERO",
    "BPF",
    "LOAD_UNALIGNED_ZEROPAD",
];
