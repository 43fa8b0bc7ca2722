//! Architecture facts: which Linux table layout an `e_machine` implies and how each
//! architecture encodes the type of a fixup in the data word of its entries.
//!
//! Everything portable (decoding, checking, sorting) lives outside this module and asks it
//! only these questions.

use crate::elf::Endian;
use crate::layout::Layout;

pub mod arm;
pub mod arm64;
pub mod loongarch;
pub mod mips;
pub mod other;
pub mod powerpc;
pub mod riscv;
pub mod s390;
pub mod x86;

/// What `e_machine` alone says about the layout of a Linux `__ex_table`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinuxMachine {
    /// The layout Linux 6.1's `scripts/sorttable` uses for this machine.
    Layout(Layout),
    /// x86: 12-byte entries whose third word is either a relative handler (4.6 to 5.15)
    /// or a data word (5.16 and later); the entries tell which (see [`x86::classify`]).
    X86,
    /// The machine's layout changed over the versions, newest first: the one that reads
    /// the table as plausible entries is the file's (see `analysis::versioned_layout`).
    Versions(&'static [Layout]),
    /// A machine Linux never sorted tables for.
    Unknown,
}

/// The Linux layout for `machine` (`e_machine`).
pub fn linux_machine(machine: u16) -> LinuxMachine {
    if x86::MACHINES.contains(&machine) {
        return LinuxMachine::X86;
    }
    let versions: [(&[u16], &'static [Layout]); 6] = [
        (arm64::MACHINES, arm64::LAYOUTS),
        (s390::MACHINES, s390::LAYOUTS),
        (riscv::MACHINES, riscv::LAYOUTS),
        (loongarch::MACHINES, loongarch::LAYOUTS),
        (powerpc::MACHINES, powerpc::LAYOUTS),
        (other::RELATIVE_MACHINES, powerpc::LAYOUTS),
    ];
    if let Some((_, layouts)) = versions.iter().find(|(m, _)| m.contains(&machine)) {
        return LinuxMachine::Versions(layouts);
    }
    let table: [(&[u16], Layout); 2] = [
        (arm::MACHINES, Layout::Absolute),
        (mips::MACHINES, Layout::Absolute),
    ];
    if let Some((_, layout)) = table.iter().find(|(m, _)| m.contains(&machine)) {
        return LinuxMachine::Layout(*layout);
    }
    if other::ABSOLUTE_MACHINES.contains(&machine) {
        return LinuxMachine::Layout(Layout::Absolute);
    }
    LinuxMachine::Unknown
}

/// The fixup type stored in the 4-byte data word `data` of a Linux entry with a data word.
pub fn fixup_type(layout: Layout, data: &[u8], endian: Endian) -> u16 {
    match layout {
        Layout::LinuxX86 => x86::fixup_type(data, endian),
        // arm64, riscv, s390 and loongarch: `short type; short data;`.
        _ => endian.u16(data),
    }
}

/// The name of fixup type `ty` for `layout`, or `None` when the kernel does not know it.
pub fn fixup_type_name(layout: Layout, ty: u16) -> Option<&'static str> {
    let names: &[&str] = match layout {
        Layout::LinuxX86 => x86::TYPES,
        Layout::LinuxArm64 => arm64::TYPES,
        Layout::LinuxRiscv => riscv::TYPES,
        Layout::LinuxS390 => s390::TYPES,
        Layout::LinuxLoongarch => loongarch::TYPES,
        _ => &[],
    };
    // Type 0 is EX_TYPE_NONE everywhere: a fixup that no handler accepts.
    names.get(usize::from(ty)).copied().filter(|_| ty != 0)
}

/// The code address a function symbol's value stands for (clears the Thumb bit on ARM).
pub fn code_address(machine: u16, value: u64) -> u64 {
    if arm::MACHINES.contains(&machine) {
        arm::code_address(value)
    } else {
        value
    }
}

/// How a machine's instructions are laid out, for the instruction-level rules
/// ([`crate::insn`]).
#[derive(Clone, Copy, Debug)]
pub enum Isa {
    /// Every instruction is this many bytes wide and aligned to it (arm64, A32, powerpc,
    /// MIPS, LoongArch).
    Fixed(u64),
    /// Instructions are 2, 4 or 6 bytes, aligned to 2; their length follows from their
    /// first halfword (riscv, s390, Thumb-2).
    Halfword(fn(u16) -> u64),
    /// x86 in this bitness: lengths from 1 to 15 bytes, found by decoding.
    X86(u32),
}

impl Isa {
    /// The alignment every instruction start has.
    pub fn granule(self) -> u64 {
        match self {
            Isa::Fixed(g) => g,
            Isa::Halfword(_) => 2,
            Isa::X86(_) => 1,
        }
    }

    /// Whether instruction starts must be found by decoding from a known start, rather
    /// than by alignment alone.
    pub fn variable_length(self) -> bool {
        !matches!(self, Isa::Fixed(_))
    }

    /// The lengths of the instructions that follow one another from the start of `code`
    /// (at address `ip`), until the bytes end or do not decode.
    pub fn lengths<'b>(
        self,
        code: &'b [u8],
        ip: u64,
        endian: Endian,
    ) -> Box<dyn Iterator<Item = u64> + 'b> {
        match self {
            Isa::X86(bitness) => Box::new(x86::lengths(bitness, code, ip)),
            Isa::Fixed(g) => Box::new(core::iter::repeat_n(g, code.len() / g as usize)),
            Isa::Halfword(len) => {
                let mut off = 0usize;
                Box::new(core::iter::from_fn(move || {
                    let n = len(endian.u16(code.get(off..off + 2)?));
                    off += n as usize;
                    (off <= code.len()).then_some(n)
                }))
            }
        }
    }
}

/// The instruction set of `machine` at `addr`, for a file with ELF header flags `flags`;
/// `thumb` says whether the code at `addr` is Thumb (ARM only: from mapping symbols).
/// `None` for machines without instruction-level rules.
pub fn isa(machine: u16, flags: u32, thumb: bool) -> Option<Isa> {
    use object::elf;
    match machine {
        m if x86::MACHINES.contains(&m) => Some(Isa::X86(x86::bitness(m))),
        m if arm64::MACHINES.contains(&m)
            || powerpc::MACHINES.contains(&m)
            || loongarch::MACHINES.contains(&m) =>
        {
            Some(Isa::Fixed(4))
        }
        m if arm::MACHINES.contains(&m) => Some(arm::isa(thumb)),
        m if mips::MACHINES.contains(&m) => Some(mips::isa(flags)),
        m if riscv::MACHINES.contains(&m) => Some(Isa::Halfword(riscv::length)),
        m if s390::MACHINES.contains(&m) => Some(Isa::Halfword(s390::length)),
        m if m == elf::EM_PARISC.0 => Some(Isa::Fixed(4)),
        _ => None,
    }
}

/// The byte order of the instructions in a file of byte order `endian`: the same, except
/// in ARM BE8 images (`EF_ARM_BE8`), whose instructions stay little-endian.
pub fn code_endian(machine: u16, flags: u32, endian: Endian) -> Endian {
    if arm::MACHINES.contains(&machine) && flags & arm::EF_ARM_BE8 != 0 {
        Endian::Little
    } else {
        endian
    }
}

/// A short name of `machine` for messages.
pub fn machine_name(machine: u16) -> &'static str {
    let names: [(&[u16], &str); 8] = [
        (x86::MACHINES, "x86"),
        (arm64::MACHINES, "AArch64"),
        (arm::MACHINES, "ARM"),
        (powerpc::MACHINES, "powerpc"),
        (mips::MACHINES, "MIPS"),
        (loongarch::MACHINES, "LoongArch"),
        (riscv::MACHINES, "RISC-V"),
        (s390::MACHINES, "s390"),
    ];
    names
        .iter()
        .find(|(m, _)| m.contains(&machine))
        .map_or("this machine", |(_, n)| n)
}

/// What an instruction that an entry marks is, as far as the memory-access rule cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Whether it can access memory (or fault like an access: cache maintenance by
    /// address, system instructions).
    pub may_access_memory: bool,
    /// Its text, for messages.
    pub text: String,
}

/// Decode the instruction at `ip` (bytes `code`) for the memory-access rule, on the
/// machines that have it (x86, arm64); `None` elsewhere or when it does not decode.
pub fn decode(isa: Isa, machine: u16, code: &[u8], ip: u64) -> Option<Decoded> {
    match isa {
        Isa::X86(bitness) => x86::decode(bitness, code, ip),
        Isa::Fixed(4) if arm64::MACHINES.contains(&machine) => arm64::decode(code),
        _ => None,
    }
}

/// How sure a type makes it that the instruction accesses memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every entry of the type marks a load, a store or an access by address, in every
    /// kernel version that uses the layout: a counter-example is a defect.
    Always,
    /// The type means a memory access, but correct kernels have entries of it on
    /// instructions that cannot fault (Linux 6.1 i386's `__copy_user_intel` marks two
    /// `movl` between registers as `UACCESS`): such an entry can never be used.
    Usually,
}

/// What the type `ty` of a `layout` entry says about the instruction's memory access;
/// `None` when nothing (types whose numbers were reused for other meanings across kernel
/// versions say nothing).
pub fn memory_access(layout: Layout, ty: u16) -> Option<Access> {
    match layout {
        Layout::LinuxX86 => (ty == x86::EX_TYPE_UACCESS).then_some(Access::Usually),
        Layout::LinuxArm64 => arm64::MEMORY_TYPES.contains(&ty).then_some(Access::Always),
        _ => None,
    }
}

#[cfg(test)]
mod isa_tests {
    use super::*;

    #[test]
    fn halfword_lengths_follow_the_first_halfword() {
        // Thumb-2: ldr.w (f8d0 ...) is 32-bit, ldr r1, [r0, #4] (6841) 16-bit.
        assert_eq!(arm::thumb_length(0xf8d0), 4);
        assert_eq!(arm::thumb_length(0xe92d), 4); // push.w
        assert_eq!(arm::thumb_length(0x6841), 2);
        assert_eq!(arm::thumb_length(0xe7fe), 2); // b .
                                                  // RISC-V: c.nop 0001, addi 0013.
        assert_eq!(riscv::length(0x0001), 2);
        assert_eq!(riscv::length(0x0013), 4);
        // s390: br %r14 07fe, l 5810, lg e310, brasl c0e5.
        assert_eq!(s390::length(0x07fe), 2);
        assert_eq!(s390::length(0x5810), 4);
        assert_eq!(s390::length(0xe310), 6);
        assert_eq!(s390::length(0xc0e5), 6);
    }

    #[test]
    fn arm64_encoding_groups() {
        for (word, no_memory) in [
            (0xf940_0001, false), // ldr x1, [x0]
            (0x3800_0401, false), // strb w1, [x0], #0
            (0xd50b_7b20, false), // dc cvau, x0
            (0x9100_0422, true),  // add x2, x1, #1
            (0x8b02_0020, true),  // add x0, x1, x2
            (0xd65f_03c0, true),  // ret
            (0x1400_0000, true),  // b .
            (0x1e60_4020, true),  // fmov d0, d1
        ] {
            assert_eq!(arm64::cannot_access_memory(word), no_memory, "{word:#x}");
        }
        let d = arm64::decode(&0x9100_0422u32.to_le_bytes()).unwrap();
        assert!(!d.may_access_memory);
        assert!(d.text.starts_with("add x2, x1"), "{}", d.text);
    }

    #[test]
    fn x86_memory_operands_and_lengths() {
        // mov al, [rdi]; xor eax, eax; rep movsb
        let code = [0x8a, 0x07, 0x31, 0xc0, 0xf3, 0xa4];
        let lens: Vec<u64> = Isa::X86(64).lengths(&code, 0, Endian::Little).collect();
        assert_eq!(lens, [2, 2, 2]);
        assert!(x86::decode(64, &code, 0).unwrap().may_access_memory);
        assert!(!x86::decode(64, &code[2..], 2).unwrap().may_access_memory);
        assert!(x86::decode(64, &code[4..], 4).unwrap().may_access_memory);
    }
}
