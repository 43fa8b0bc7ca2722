//! MIPS: absolute `{ unsigned long insn, fixup; }`.

/// `EM_MIPS`.
pub const MACHINES: &[u16] = &[object::elf::EM_MIPS.0];

/// `EF_MIPS_ARCH_ASE_MICROMIPS`: the file holds microMIPS code (2- and 4-byte instructions).
const EF_MIPS_MICROMIPS: u32 = 0x0200_0000;
/// `EF_MIPS_ARCH_ASE_M16`: MIPS16e code (2- and 4-byte instructions).
const EF_MIPS_M16: u32 = 0x0400_0000;

/// 4-byte instructions, or a 2-byte granule when the header flags say the file has
/// microMIPS or MIPS16e code.
pub fn isa(flags: u32) -> super::Isa {
    if flags & (EF_MIPS_MICROMIPS | EF_MIPS_M16) != 0 {
        super::Isa::Fixed(2)
    } else {
        super::Isa::Fixed(4)
    }
}
