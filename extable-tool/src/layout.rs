//! Table layouts: how entries are laid out, which fields are self-relative, what the third
//! word means and how entries are ordered.

use core::fmt;
use core::str::FromStr;

use extable_runtime::entry::{ENTRY_ALIGN, ENTRY_SIZE, FIELD_OFFSETS, SORT_MARKER_SYMBOL};

use crate::elf::Class;

/// Linux's sort marker, a 32-bit object that `scripts/sorttable` clears.
pub const LINUX_SORT_MARKER_SYMBOL: &str = "main_extable_sort_needed";

/// A table layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// This project's (`extable_runtime::entry`): insn, fixup, handler, all self-relative.
    Extable,
    /// Linux x86 since 5.16: insn, fixup self-relative, then a data word (type, reg, imm).
    LinuxX86,
    /// Linux x86 4.6 to 5.15: insn, fixup, handler, all self-relative.
    LinuxX86Legacy,
    /// Linux x86 3.5 to 4.5: insn, fixup self-relative, 8 bytes.
    LinuxX86Pair,
    /// Linux arm64 since 5.16: insn, fixup self-relative, `short type, data`.
    LinuxArm64,
    /// Linux arm64 4.6 to 5.15: insn, fixup self-relative, 8 bytes.
    LinuxArm64Legacy,
    /// Linux riscv: like arm64.
    LinuxRiscv,
    /// Linux s390 since 5.16: like arm64.
    LinuxS390,
    /// Linux s390 5.5 to 5.15: insn, fixup self-relative, then a self-relative 64-bit
    /// handler (0: none), 16 bytes.
    LinuxS390Handler,
    /// Linux s390 before 5.5: insn, fixup self-relative, 8 bytes.
    LinuxS390Pair,
    /// Linux LoongArch since 6.2: like arm64.
    LinuxLoongarch,
    /// Linux powerpc and parisc: insn, fixup self-relative, 8 bytes.
    LinuxPowerpc,
    /// Absolute `{ unsigned long insn, fixup; }` (arm, mips, ...): 8 bytes in ELF32, 16 in
    /// ELF64.
    Absolute,
}

/// Every layout, in the order `--help` lists them.
pub(crate) const ALL_LAYOUTS: [Layout; 13] = [
    Layout::Extable,
    Layout::LinuxX86,
    Layout::LinuxX86Legacy,
    Layout::LinuxX86Pair,
    Layout::LinuxArm64,
    Layout::LinuxArm64Legacy,
    Layout::LinuxRiscv,
    Layout::LinuxS390,
    Layout::LinuxS390Handler,
    Layout::LinuxS390Pair,
    Layout::LinuxLoongarch,
    Layout::LinuxPowerpc,
    Layout::Absolute,
];

/// What the word after insn and fixup holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Third {
    /// Nothing: the entry has two fields.
    Nothing,
    /// A self-relative pointer to a handler function at this byte offset.
    Handler(usize),
    /// A self-relative 64-bit pointer to a handler function at this byte offset, 0 when the
    /// entry has none (s390 5.5 to 5.15); moved as sorttable moves it, 0 kept.
    WideHandler(usize),
    /// A data word (fixup type and arguments) at this byte offset; never moved.
    Data(usize),
}

/// How entries are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// By the insn address, unsigned (this project's runtime search).
    InsnAddress,
    /// By the insn offset from the start of the section, compared as a signed `i32`
    /// (Linux's `compare_relative_table` after normalisation).
    SectionRelativeI32,
    /// By the first word, unsigned (Linux's `compare_extable`).
    FirstWord,
}

/// The byte shape of a layout's entries for one ELF class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Entry size in bytes.
    pub size: usize,
    /// Required alignment of the table.
    pub align: usize,
    /// Offsets of the insn and fixup fields.
    pub insn_fixup: [usize; 2],
    /// Whether insn and fixup (and a handler) are self-relative `i32`s rather than words.
    pub relative: bool,
    /// The third field.
    pub third: Third,
    /// Sort order.
    pub order: Order,
}

impl Shape {
    /// Offsets of all self-relative fields (adjusted when an entry moves).
    pub fn relative_fields(&self) -> &'static [usize] {
        match (self.relative, self.third) {
            (false, _) => &[],
            (true, Third::Handler(_)) => &FIELD_OFFSETS,
            (true, _) => &FIELD_OFFSETS[..2],
        }
    }
}

impl Layout {
    /// Every layout this version knows, in the order `--help` lists them.
    pub const ALL: &'static [Layout] = &ALL_LAYOUTS;

    /// The `--layout` name.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Extable => "extable",
            Layout::LinuxX86 => "linux-x86",
            Layout::LinuxX86Legacy => "linux-x86-4.6",
            Layout::LinuxX86Pair => "linux-x86-3.5",
            Layout::LinuxArm64 => "linux-arm64",
            Layout::LinuxArm64Legacy => "linux-arm64-4.6",
            Layout::LinuxRiscv => "linux-riscv",
            Layout::LinuxS390 => "linux-s390",
            Layout::LinuxS390Handler => "linux-s390-5.5",
            Layout::LinuxS390Pair => "linux-s390-pair",
            Layout::LinuxLoongarch => "linux-loongarch",
            Layout::LinuxPowerpc => "linux-powerpc",
            Layout::Absolute => "absolute",
        }
    }

    /// Whether this is one of Linux's layouts (sorted as `scripts/sorttable` does).
    pub fn is_linux(self) -> bool {
        self != Layout::Extable
    }

    /// The name of the sort-marker symbol.
    pub fn marker_symbol(self) -> &'static str {
        if self.is_linux() {
            LINUX_SORT_MARKER_SYMBOL
        } else {
            SORT_MARKER_SYMBOL
        }
    }

    /// The entry shape in a file of `class`.
    pub fn shape(self, class: Class) -> Shape {
        let [insn, fixup, third] = FIELD_OFFSETS;
        let relative = |third, order| Shape {
            size: if third == Third::Nothing {
                8
            } else {
                ENTRY_SIZE
            },
            align: ENTRY_ALIGN,
            insn_fixup: [insn, fixup],
            relative: true,
            third,
            order,
        };
        match self {
            Layout::Extable => relative(Third::Handler(third), Order::InsnAddress),
            Layout::LinuxX86Legacy => relative(Third::Handler(third), Order::SectionRelativeI32),
            Layout::LinuxX86
            | Layout::LinuxArm64
            | Layout::LinuxRiscv
            | Layout::LinuxS390
            | Layout::LinuxLoongarch => relative(Third::Data(third), Order::SectionRelativeI32),
            Layout::LinuxS390Handler => Shape {
                size: 16,
                align: 8,
                insn_fixup: [insn, fixup],
                relative: true,
                third: Third::WideHandler(8),
                order: Order::SectionRelativeI32,
            },
            Layout::LinuxX86Pair
            | Layout::LinuxArm64Legacy
            | Layout::LinuxS390Pair
            | Layout::LinuxPowerpc => relative(Third::Nothing, Order::SectionRelativeI32),
            Layout::Absolute => {
                let w = class.word_size();
                Shape {
                    size: 2 * w,
                    align: w,
                    insn_fixup: [0, w],
                    relative: false,
                    third: Third::Nothing,
                    order: Order::FirstWord,
                }
            }
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_LAYOUTS
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ALL_LAYOUTS.iter().map(|l| l.name()).collect();
                format!("unknown layout {s:?} (one of: {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_shapes_match_the_documented_sizes() {
        for l in ALL_LAYOUTS {
            assert_eq!(l.name().parse::<Layout>().unwrap(), l);
        }
        assert!("linux-x87".parse::<Layout>().is_err());
        assert_eq!(Layout::Extable.shape(Class::Elf64).size, ENTRY_SIZE);
        assert_eq!(
            Layout::Extable.shape(Class::Elf64).relative_fields(),
            &FIELD_OFFSETS
        );
        assert_eq!(
            Layout::LinuxX86.shape(Class::Elf64).relative_fields(),
            &[0, 4]
        );
        assert_eq!(Layout::LinuxX86Legacy.shape(Class::Elf32).size, 12);
        assert_eq!(Layout::LinuxPowerpc.shape(Class::Elf64).size, 8);
        assert_eq!(Layout::LinuxArm64Legacy.shape(Class::Elf64).size, 8);
        assert_eq!(Layout::LinuxX86Pair.shape(Class::Elf32).size, 8);
        assert_eq!(Layout::LinuxS390Pair.shape(Class::Elf64).size, 8);
        assert_eq!(Layout::LinuxS390Handler.shape(Class::Elf64).size, 16);
        assert_eq!(
            Layout::LinuxS390Handler
                .shape(Class::Elf64)
                .relative_fields(),
            &[0, 4]
        );
        assert_eq!(Layout::Absolute.shape(Class::Elf32).size, 8);
        assert_eq!(Layout::Absolute.shape(Class::Elf64).size, 16);
        assert!(Layout::Absolute
            .shape(Class::Elf64)
            .relative_fields()
            .is_empty());
    }
}
