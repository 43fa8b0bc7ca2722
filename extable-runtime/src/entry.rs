//! The one definition of an `__ex_table` entry.
//!
//! Every risky instruction gets one entry of three self-relative `i32` fields:
//!
//! | offset | field     | meaning                                                   |
//! |--------|-----------|-----------------------------------------------------------|
//! | 0      | `insn`    | address of the instruction that may fault                 |
//! | 4      | `fixup`   | address execution resumes at when the fault is fixed      |
//! | 8      | `handler` | address of the [`Handler`](crate::Handler) that fixes it  |
//!
//! "Self-relative" means: target = address of the field itself + its signed value, as in
//! Linux's x86 tables of 4.6 to 5.15 (seed 001's `struct exception_table_entry { int insn,
//! fixup, handler; }`). A self-relative table needs no relocations in a static or a
//! position-independent image, and all three fields move together when the table is sorted.
//!
//! The macros emit this layout from assembly (see [`ASM_ENTRY_DIRECTIVES`]), the runtime
//! searches and sorts it, and `extable-tool` reads and patches it in ELF files through
//! [`FIELD_OFFSETS`] and [`adjust_for_move`]: one definition for all three.

/// Name of the ELF section that holds the table.
pub const SECTION: &str = "__ex_table";

/// Size in bytes of one entry.
pub const ENTRY_SIZE: usize = 12;

/// Required alignment in bytes of the table and of each entry.
pub const ENTRY_ALIGN: usize = 4;

/// Byte offsets of the three self-relative fields: `insn`, `fixup`, `handler`.
pub const FIELD_OFFSETS: [usize; 3] = [0, 4, 8];

/// Name of the sort marker: a 32-bit word that starts at 1 and that `extable-tool sort` sets
/// to 0 once the table is sorted in the file (Linux's `main_extable_sort_needed`).
pub const SORT_MARKER_SYMBOL: &str = "extable_main_sort_needed";

/// Symbol the linker defines at the start of [`SECTION`].
pub const START_SYMBOL: &str = "__start___ex_table";

/// Symbol the linker defines at the end of [`SECTION`].
pub const STOP_SYMBOL: &str = "__stop___ex_table";

/// The section flags every piece of `__ex_table` is emitted with: allocated (`a`) and
/// retained (`R`, `SHF_GNU_RETAIN`).
///
/// Retention matters: GNU ld 2.40 garbage-collects an input section that nothing references
/// even when `__start___ex_table` is used, so without `R` a hosted binary links with an empty
/// table. And all pieces in one object must agree: the assembler rejects a section reopened
/// with other flags ("changed section flags for __ex_table").
pub const ASM_SECTION_FLAGS: &str = "aR";

/// Assembler directives that open the table section, for code that emits entries by hand.
///
/// Use as `.pushsection __ex_table, "aR"` followed by `.balign 4` and three
/// `.long TARGET - .` words, then `.popsection`. The `extable` macros emit exactly this.
pub const ASM_ENTRY_DIRECTIVES: &str = ".pushsection __ex_table, \"aR\"\n.balign 4";

/// One exception-table entry, exactly as it is laid out in `__ex_table`.
///
/// An entry is only meaningful at its place in the table: its fields are offsets from their
/// own addresses. Copying an entry elsewhere changes what it points to; use
/// [`ExceptionTableEntry::targets`] to read the absolute addresses.
#[repr(C, align(4))]
#[derive(Debug, PartialEq, Eq)]
pub struct ExceptionTableEntry {
    /// Self-relative offset of the faulting instruction.
    pub insn: i32,
    /// Self-relative offset of the fixup code.
    pub fixup: i32,
    /// Self-relative offset of the handler function.
    pub handler: i32,
}

const _: () = assert!(core::mem::size_of::<ExceptionTableEntry>() == ENTRY_SIZE);
const _: () = assert!(core::mem::align_of::<ExceptionTableEntry>() == ENTRY_ALIGN);

/// The absolute addresses an entry points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Targets {
    /// Address of the faulting instruction.
    pub insn: usize,
    /// Address of the fixup.
    pub fixup: usize,
    /// Address of the handler function.
    pub handler: usize,
}

/// Resolve a self-relative field at `field_addr`: `field_addr + offset`, wrapping like the
/// address arithmetic of the machine.
#[inline(always)]
pub const fn resolve(field_addr: usize, offset: i32) -> usize {
    field_addr.wrapping_add(offset as isize as usize)
}

/// The offset that makes a field at `field_addr` point to `target` in this machine's address
/// space, or `None` when the distance does not fit an `i32`.
///
/// In a 32-bit address space addresses wrap, so every target is reachable; in a 64-bit one
/// only targets within ±2 GiB are.
#[inline]
pub fn offset_to(field_addr: usize, target: usize) -> Option<i32> {
    i32::try_from(target.wrapping_sub(field_addr) as isize).ok()
}

/// The width of the address space a table lives in: it decides whether self-relative
/// arithmetic wraps (32 bits) or must not overflow (64 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressWidth {
    /// A 32-bit address space (ELF32): offsets wrap modulo 2^32, every target is reachable.
    Bits32,
    /// A 64-bit address space (ELF64): a target more than 2 GiB away is unreachable.
    Bits64,
}

impl AddressWidth {
    /// The width of the machine this code runs on.
    pub const NATIVE: AddressWidth = if usize::BITS == 32 {
        AddressWidth::Bits32
    } else {
        AddressWidth::Bits64
    };
}

/// The new value of a self-relative field whose entry moves by `delta` bytes
/// (`new address - old address`), so that it keeps pointing at the same target, in an
/// address space of `width`.
///
/// This is the adjustment of Linux's `swap_ex`. `None` when the target is out of reach from
/// the new place (only possible in a 64-bit address space).
#[inline]
pub fn adjust_for_move_in(offset: i32, delta: i64, width: AddressWidth) -> Option<i32> {
    match width {
        AddressWidth::Bits32 => Some((i64::from(offset).wrapping_sub(delta)) as i32),
        AddressWidth::Bits64 => i32::try_from(i64::from(offset) - delta).ok(),
    }
}

/// [`adjust_for_move_in`] for a 64-bit address space, where an overflow is a real loss.
#[inline]
pub fn adjust_for_move(offset: i32, delta: i64) -> Option<i32> {
    adjust_for_move_in(offset, delta, AddressWidth::Bits64)
}

impl ExceptionTableEntry {
    /// The address of this entry's `insn` field.
    #[inline(always)]
    fn base(&self) -> usize {
        self as *const Self as usize
    }

    /// Address of the instruction this entry covers (Linux's `ex_to_insn`).
    #[inline(always)]
    pub fn insn_addr(&self) -> usize {
        resolve(self.base() + FIELD_OFFSETS[0], self.insn)
    }

    /// Address execution resumes at when the handler fixes a fault (`ex_fixup_addr`).
    #[inline(always)]
    pub fn fixup_addr(&self) -> usize {
        resolve(self.base() + FIELD_OFFSETS[1], self.fixup)
    }

    /// Address of this entry's handler function.
    #[inline(always)]
    pub fn handler_addr(&self) -> usize {
        resolve(self.base() + FIELD_OFFSETS[2], self.handler)
    }

    /// All three absolute addresses.
    #[inline]
    pub fn targets(&self) -> Targets {
        Targets {
            insn: self.insn_addr(),
            fixup: self.fixup_addr(),
            handler: self.handler_addr(),
        }
    }

    /// Build the field values of an entry placed at `entry_addr` that points to `targets`.
    /// `None` when a distance does not fit an `i32`.
    pub fn encode(entry_addr: usize, targets: Targets) -> Option<[i32; 3]> {
        let at = |i: usize| entry_addr + FIELD_OFFSETS[i];
        Some([
            offset_to(at(0), targets.insn)?,
            offset_to(at(1), targets.fixup)?,
            offset_to(at(2), targets.handler)?,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_resolve_relative_to_their_own_address() {
        let table = [
            ExceptionTableEntry {
                insn: 0x100,
                fixup: 0x200,
                handler: -0x10,
            },
            ExceptionTableEntry {
                insn: 0,
                fixup: 0,
                handler: 0,
            },
        ];
        let base = table.as_ptr() as usize;
        assert_eq!(table[0].insn_addr(), base + 0x100);
        assert_eq!(table[0].fixup_addr(), base + 4 + 0x200);
        assert_eq!(table[0].handler_addr(), base + 8 - 0x10);
        assert_eq!(table[1].insn_addr(), base + 12);
        assert_eq!(table[1].handler_addr(), base + 20);
    }

    #[test]
    fn encode_round_trips_and_refuses_overflow() {
        let t = Targets {
            insn: 0x4000_0000,
            fixup: 0x4000_0100,
            handler: 0x3fff_0000,
        };
        let f = ExceptionTableEntry::encode(0x4010_0000, t).unwrap();
        assert_eq!(f[0], 0x4000_0000 - 0x4010_0000);
        assert_eq!(f[2], 0x3fff_0000 - 0x4010_0008);
        assert_eq!(offset_to(1 << 31, 0), Some(i32::MIN));
        assert_eq!(adjust_for_move(i32::MIN, 1), None);
        assert_eq!(adjust_for_move(10, 12), Some(-2));
        // A 32-bit address space wraps: moving never loses a target.
        assert_eq!(
            adjust_for_move_in(i32::MIN, 1, AddressWidth::Bits32),
            Some(i32::MAX)
        );
        assert_eq!(
            adjust_for_move_in(i32::MAX, -1, AddressWidth::Bits32),
            Some(i32::MIN)
        );
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_64_bit_target_beyond_2_gib_is_unreachable() {
        assert_eq!(offset_to(0, 1 << 31), None);
        assert_eq!(offset_to(1 << 31, 0), Some(i32::MIN));
    }

    #[test]
    #[cfg(target_pointer_width = "32")]
    fn every_32_bit_target_is_reachable() {
        assert_eq!(offset_to(0, 1 << 31), Some(i32::MIN));
        assert_eq!(offset_to(0x1000, 0x0fff_f000), Some(0x0fff_e000));
        assert_eq!(offset_to(0x10, 0xffff_fff0), Some(-0x20));
    }
}
