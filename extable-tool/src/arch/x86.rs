//! x86 (i386 and x86_64).
//!
//! Linux 3.5 to 4.5: `struct exception_table_entry { int insn, fixup; }`, both
//! self-relative. 4.6 to 5.15: `{ int insn, fixup, handler; }`, all self-relative. Since
//! 5.16: `{ int insn, fixup, data; }` where `data` holds the type in bits 0-7, a register
//! in 8-11, flags in 12-15 and an immediate in 16-31
//! (`arch/x86/include/asm/extable_fixup_types.h`).

use crate::elf::Endian;
use crate::table::Table;

/// `EM_386`, `EM_X86_64`.
pub const MACHINES: &[u16] = &[object::elf::EM_386.0, object::elf::EM_X86_64.0];

/// `EX_TYPE_*` names by number, as of Linux 6.x (0 is `EX_TYPE_NONE`).
pub const TYPES: &[&str] = &[
    "NONE",
    "DEFAULT",
    "FAULT",
    "UACCESS",
    "COPY",
    "CLEAR_FS",
    "FPU_RESTORE",
    "BPF",
    "WRMSR",
    "RDMSR",
    "WRMSR_SAFE",
    "RDMSR_SAFE",
    "WRMSR_IN_MCE",
    "RDMSR_IN_MCE",
    "DEFAULT_MCE_SAFE",
    "FAULT_MCE_SAFE",
    "POP_ZERO",
    "IMM_REG",
    "FAULT_SGX",
    "UCOPY_LEN",
    "ZEROPAD",
    "ERETU",
];

/// The type bits (0-7) of a data word.
pub fn fixup_type(data: &[u8], endian: Endian) -> u16 {
    (endian.u32(data) & 0xff) as u16
}

/// How the third words of a non-empty x86 table read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThirdWord {
    /// Every third word, read as self-relative, is the start of a function: 4.6-5.15, whose
    /// handlers are always functions.
    Handlers,
    /// At most half are: data words, 5.16 and later (or the table is empty). A data word
    /// (type, register, flags, immediate) may land on a function start by chance, so a few
    /// hits do not make a 4.6 table; sorttable 6.x reads every x86 table this way.
    Data,
    /// Most but not all are: a 4.6-5.15 table with broken handlers, or a coincidence too
    /// large to guess about.
    Mixed,
}

/// Classify a table by counting how many of `n` entries have a third word that points at a
/// function (`hits`).
pub fn classify(hits: usize, n: usize) -> ThirdWord {
    if n > 0 && hits == n {
        ThirdWord::Handlers
    } else if hits * 2 <= n {
        ThirdWord::Data
    } else {
        ThirdWord::Mixed
    }
}

/// Whether `pairs`, a table read as 3.5-4.5's pairs, has at most one entry in ten whose
/// instruction another entry also has. A 4.6-5.15 table read as pairs has every third
/// "instruction" on one of its few handlers; a real table of pairs marks each instruction
/// once, but for the odd identical duplicate.
pub fn distinct_instructions(pairs: &Table<'_>) -> bool {
    // A pair's sort key is its instruction's offset in the section.
    let mut keys = pairs.keys();
    keys.sort_unstable();
    let repeats = keys.windows(2).filter(|w| w[0] == w[1]).count();
    10 * repeats <= keys.len()
}

/// `EX_TYPE_UACCESS`: a user-memory access. The one type whose number and meaning every
/// kernel since 5.16 shares and that always marks an instruction with a memory operand
/// (the others were renumbered between versions, or mark `rdmsr`, `wrmsr`, segment loads).
pub const EX_TYPE_UACCESS: u16 = 3;

/// 32 for `EM_386`, 64 for `EM_X86_64`.
pub fn bitness(machine: u16) -> u32 {
    if machine == object::elf::EM_386.0 {
        32
    } else {
        64
    }
}

mod shape;

/// The longest x86 instruction.
const MAX_LENGTH: usize = 15;

fn decode_one(bitness: u32, code: &[u8], ip: u64) -> Option<iced_x86::Instruction> {
    let code = &code[..code.len().min(MAX_LENGTH)];
    let mut decoder = iced_x86::Decoder::with_ip(bitness, code, ip, iced_x86::DecoderOptions::NONE);
    let insn = decoder.decode();
    (!insn.is_invalid()).then_some(insn)
}

/// The lengths of the instructions from the start of `code` on, until the bytes end or do
/// not decode: from [`shape`]'s tables, or iced-x86 for what they do not know.
pub fn lengths(bitness: u32, code: &[u8], ip: u64) -> impl Iterator<Item = u64> + '_ {
    let mut at = 0;
    core::iter::from_fn(move || {
        let rest = code.get(at..).filter(|r| !r.is_empty())?;
        let len = match shape::shape(bitness == 64, rest) {
            Some(s) => s.len,
            None => decode_one(bitness, rest, ip + at as u64)?.len(),
        };
        at += len;
        Some(len as u64)
    })
}

/// Whether iced-x86's `insn` has a memory operand: explicit, or the implicit ones of string
/// instructions.
fn has_memory_operand(insn: &iced_x86::Instruction) -> bool {
    use iced_x86::OpKind;
    (0..insn.op_count()).any(|k| {
        matches!(
            insn.op_kind(k),
            OpKind::Memory
                | OpKind::MemorySegSI
                | OpKind::MemorySegESI
                | OpKind::MemorySegRSI
                | OpKind::MemorySegDI
                | OpKind::MemorySegEDI
                | OpKind::MemorySegRDI
                | OpKind::MemoryESDI
                | OpKind::MemoryESEDI
                | OpKind::MemoryESRDI
        )
    })
}

/// The instruction at the start of `code`: whether it has a memory operand (explicit, or
/// the implicit ones of string instructions), and its mnemonic. The mnemonic is only
/// needed for an instruction without one (the rules report those), and only then is the
/// instruction decoded with iced-x86 when [`shape`]'s tables know it.
pub fn decode(bitness: u32, code: &[u8], ip: u64) -> Option<super::Decoded> {
    if shape::shape(bitness == 64, code).is_some_and(|s| s.memory) {
        return Some(super::Decoded {
            may_access_memory: true,
            text: String::new(),
        });
    }
    let insn = decode_one(bitness, code, ip)?;
    Some(super::Decoded {
        may_access_memory: has_memory_operand(&insn),
        text: format!("{:?}", insn.mnemonic()).to_lowercase(),
    })
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn a_few_data_words_on_function_starts_do_not_make_a_legacy_table() {
        // Seen on a real i386 link: 8 of 6300 imm = -1 data words land on functions.
        assert_eq!(classify(8, 6300), ThirdWord::Data);
        assert_eq!(classify(0, 0), ThirdWord::Data);
        assert_eq!(classify(5, 10), ThirdWord::Data);
        assert_eq!(classify(10, 10), ThirdWord::Handlers);
        assert_eq!(classify(9, 10), ThirdWord::Mixed);
    }
}
