//! 32-bit ARM: absolute `{ unsigned long insn, fixup; }`.

/// `EM_ARM`.
pub const MACHINES: &[u16] = &[object::elf::EM_ARM.0];

/// A function symbol's value with the Thumb bit cleared.
pub fn code_address(value: u64) -> u64 {
    value & !1
}
