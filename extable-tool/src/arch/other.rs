//! Other machines Linux 6.1's `scripts/sorttable` knows.

/// parisc: `{ int insn, fixup; }` self-relative, like powerpc (until 2024).
pub const RELATIVE_MACHINES: &[u16] = &[object::elf::EM_PARISC.0];

/// ARC (compact and v2), microblaze, xtensa: absolute entries.
pub const ABSOLUTE_MACHINES: &[u16] = &[
    object::elf::EM_ARC_COMPACT.0,
    object::elf::EM_ARC_COMPACT2.0,
    object::elf::EM_MICROBLAZE.0,
    object::elf::EM_XTENSA.0,
];
