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
    /// The machine changed layouts in a way the file cannot tell: the reason.
    Ambiguous(&'static str),
    /// A machine Linux never sorted tables for.
    Unknown,
}

/// The Linux layout for `machine` (`e_machine`).
pub fn linux_machine(machine: u16) -> LinuxMachine {
    if x86::MACHINES.contains(&machine) {
        return LinuxMachine::X86;
    }
    if loongarch::MACHINES.contains(&machine) {
        return LinuxMachine::Ambiguous(loongarch::AMBIGUITY);
    }
    let table: [(&[u16], Layout); 7] = [
        (arm64::MACHINES, Layout::LinuxArm64),
        (riscv::MACHINES, Layout::LinuxRiscv),
        (s390::MACHINES, Layout::LinuxS390),
        (powerpc::MACHINES, Layout::LinuxPowerpc),
        (other::RELATIVE_MACHINES, Layout::LinuxPowerpc),
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
