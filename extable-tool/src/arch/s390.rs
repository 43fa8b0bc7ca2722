//! s390: `{ int insn, fixup; short type, data; }` since 5.16 (`asm/asm-extable.h`);
//! `{ int insn, fixup; long handler; }` from 5.5 to 5.15, the handler self-relative and 0
//! when there is none; `{ int insn, fixup; }` before.

use crate::layout::Layout;

/// `EM_S390`.
pub const MACHINES: &[u16] = &[object::elf::EM_S390.0];

/// The layouts of s390 kernels, newest first.
pub const LAYOUTS: &[Layout] = &[
    Layout::LinuxS390,
    Layout::LinuxS390Handler,
    Layout::LinuxS390Pair,
];

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

/// The length of the instruction whose first halfword is `first`, from the two top bits of
/// the opcode: `00` 2 bytes, `01` and `10` 4 bytes, `11` 6 bytes.
pub fn length(first: u16) -> u64 {
    match first >> 14 {
        0 => 2,
        1 | 2 => 4,
        _ => 6,
    }
}
