//! s390: `{ int insn, fixup; short type, data; }` since 5.16 (`asm/asm-extable.h`).

/// `EM_S390`.
pub const MACHINES: &[u16] = &[object::elf::EM_S390.0];

/// `EX_TYPE_*` names by number.
pub const TYPES: &[&str] = &[
    "NONE",
    "FIXUP",
    "BPF",
    "UA_STORE",
    "UA_LOAD_MEM",
    "UA_LOAD_REG",
    "UA_LOAD_REGPAIR",
    "ZEROPAD",
    "FPC",
    "UA_MVCOS_TO",
    "UA_MVCOS_FROM",
];
