//! 32-bit ARM: absolute `{ unsigned long insn, fixup; }`.

/// `EM_ARM`.
pub const MACHINES: &[u16] = &[object::elf::EM_ARM.0];

/// `EF_ARM_BE8`: a big-endian image whose instructions are little-endian.
pub const EF_ARM_BE8: u32 = 0x0080_0000;

/// A function symbol's value with the Thumb bit cleared.
pub fn code_address(value: u64) -> u64 {
    value & !1
}

/// A32 (4-byte instructions) or Thumb-2 (2 or 4 bytes: a first halfword whose top five
/// bits are `0b11101`, `0b11110` or `0b11111` begins a 32-bit instruction).
pub fn isa(thumb: bool) -> super::Isa {
    if thumb {
        super::Isa::Halfword(thumb_length)
    } else {
        super::Isa::Fixed(4)
    }
}

/// The length of the Thumb instruction whose first halfword is `first`.
pub fn thumb_length(first: u16) -> u64 {
    if first >> 11 >= 0b11101 {
        4
    } else {
        2
    }
}

/// What follows a mapping symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// `$a`: A32 code.
    A32,
    /// `$t`: Thumb code.
    Thumb,
    /// `$d`: data.
    Data,
}

/// What a mapping symbol (`$a`, `$t`, `$d`, optionally with a `.suffix`) says; `None` for
/// other names.
pub fn mapping_symbol(name: &[u8]) -> Option<Mapped> {
    let kind = match name {
        [b'$', k] => *k,
        [b'$', k, b'.', ..] => *k,
        _ => return None,
    };
    match kind {
        b't' => Some(Mapped::Thumb),
        b'a' => Some(Mapped::A32),
        b'd' => Some(Mapped::Data),
        _ => None,
    }
}
