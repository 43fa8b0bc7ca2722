//! arm64: `{ int insn, fixup; short type, data; }` since 5.16 (`asm/asm-extable.h`),
//! `{ int insn, fixup; }` from 4.6 to 5.15, `{ unsigned long insn, fixup; }` before.

use crate::layout::Layout;

/// `EM_AARCH64`.
pub const MACHINES: &[u16] = &[object::elf::EM_AARCH64.0];

/// The layouts of arm64 kernels, newest first.
pub const LAYOUTS: &[Layout] = &[
    Layout::LinuxArm64,
    Layout::LinuxArm64Legacy,
    Layout::Absolute,
];

/// `EX_TYPE_*` names by number. 5.16-6.0 had FIXUP=1, BPF=2, UACCESS_ERR_ZERO=3,
/// LOAD_UNALIGNED_ZEROPAD=4; later kernels renumbered (BPF=1, UACCESS_ERR_ZERO=2,
/// KACCESS_ERR_ZERO=3, ...). Any of 1..=5 is a type some kernel handles.
pub const TYPES: &[&str] = &[
    "NONE",
    "FIXUP|BPF",
    "BPF|UACCESS_ERR_ZERO",
    "UACCESS_ERR_ZERO|KACCESS_ERR_ZERO",
    "LOAD_UNALIGNED_ZEROPAD",
    "UACCESS_CPY",
];

/// Types whose entries always mark a load, a store or a cache maintenance by address in
/// a kernel image: `UACCESS_ERR_ZERO`, `KACCESS_ERR_ZERO`, `LOAD_UNALIGNED_ZEROPAD`,
/// `UACCESS_CPY` (6.1 and later), and in 5.16-6.0 `BPF` (only in JIT images, never in a
/// kernel file), `UACCESS_ERR_ZERO` and `LOAD_UNALIGNED_ZEROPAD`. Type 1 (`FIXUP` or `BPF`)
/// is left out.
pub const MEMORY_TYPES: &[u16] = &[2, 3, 4, 5];

/// Whether the A64 instruction `word` cannot access memory, from its top-level encoding
/// group (`op0`, bits 28-25): data processing (immediate, register, SIMD and FP) and
/// branches cannot; loads and stores, SVE and the system instructions (`dc`, `ic`, `at`,
/// `sys`, which act on an address) can; reserved and unallocated groups are not judged.
pub fn cannot_access_memory(word: u32) -> bool {
    let op0 = (word >> 25) & 0b1111;
    let system = (word >> 22) == 0b11_0101_0100;
    match op0 {
        0b1000 | 0b1001 => true,             // data processing, immediate
        0b1010 | 0b1011 => !system,          // branches, exceptions; not system
        _ if op0 & 0b0111 == 0b0101 => true, // data processing, register
        _ if op0 & 0b0111 == 0b0111 => true, // data processing, SIMD and FP
        _ => false,                          // loads and stores, SVE, reserved
    }
}

/// The A64 instruction at the start of `code` (always little-endian), decoded with
/// yaxpeax-arm for its text.
pub fn decode(code: &[u8]) -> Option<super::Decoded> {
    use yaxpeax_arch::{Decoder, U8Reader};
    let bytes: [u8; 4] = code.get(..4)?.try_into().ok()?;
    let word = u32::from_le_bytes(bytes);
    let mut reader = U8Reader::new(&bytes);
    let text = match yaxpeax_arm::armv8::a64::InstDecoder::default().decode(&mut reader) {
        Ok(inst) => inst.to_string(),
        Err(_) => format!(".inst {word:#010x}"),
    };
    Some(super::Decoded {
        may_access_memory: !cannot_access_memory(word),
        text,
    })
}
