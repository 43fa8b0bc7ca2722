//! Synthetic programs with a table of any layout, class and byte order.

#![allow(dead_code)]

use super::elfgen::*;
use extable_tool::Layout;

pub const TEXT: u64 = 0x10000;
pub const TEXT_SIZE: u64 = 0x4000;
pub const FUNC_SIZE: u64 = 0x40;
pub const FUNCS: u64 = 0xf0;
pub const HANDLER0: u64 = TEXT + 0x3f00;
pub const HANDLER1: u64 = TEXT + 0x3f40;
pub const FIXUP_TEXT: u64 = 0x20000;
pub const TABLE: u64 = 0x30000;
pub const DATA: u64 = 0x40000;
pub const RODATA: u64 = 0x50000;

/// The third field of a generated entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThirdSpec {
    None,
    Handler(u64),
    /// (type, data): a u32 word for x86, two u16 for the others.
    Data(u16, u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub insn: u64,
    pub fixup: u64,
    pub third: ThirdSpec,
}

/// The natural machine of a layout for a class and byte order.
pub fn machine_for(layout: Layout, is64: bool, big: bool) -> u16 {
    match (layout, is64, big) {
        (Layout::Extable, true, false) => EM_X86_64,
        (Layout::Extable, false, false) => EM_ARM,
        (Layout::Extable, false, true) => EM_PPC,
        (Layout::Extable, true, true) => EM_PPC64,
        (Layout::LinuxX86 | Layout::LinuxX86Legacy | Layout::LinuxX86Pair, true, _) => EM_X86_64,
        (Layout::LinuxX86 | Layout::LinuxX86Legacy | Layout::LinuxX86Pair, false, _) => EM_386,
        (Layout::LinuxArm64 | Layout::LinuxArm64Legacy, ..) => EM_AARCH64,
        (Layout::LinuxRiscv, ..) => EM_RISCV,
        (Layout::LinuxS390 | Layout::LinuxS390Handler | Layout::LinuxS390Pair, ..) => EM_S390,
        (Layout::LinuxLoongarch, ..) => EM_LOONGARCH,
        (Layout::LinuxPowerpc, true, _) => EM_PPC64,
        (Layout::LinuxPowerpc, false, _) => EM_PPC,
        (Layout::Absolute, false, false) => EM_ARM,
        (Layout::Absolute, _, _) => EM_MIPS,
        (other, ..) => panic!("no machine for {other}"),
    }
}

pub fn entry_size(layout: Layout, is64: bool) -> usize {
    match layout {
        Layout::LinuxPowerpc
        | Layout::LinuxArm64Legacy
        | Layout::LinuxX86Pair
        | Layout::LinuxS390Pair => 8,
        Layout::LinuxS390Handler => 16,
        Layout::Absolute => {
            if is64 {
                16
            } else {
                8
            }
        }
        _ => 12,
    }
}

fn put32(v: u32, big: bool) -> [u8; 4] {
    if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

fn put16(v: u16, big: bool) -> [u8; 2] {
    if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// Encode `specs` as a table at `table_addr`.
pub fn table_bytes(
    layout: Layout,
    is64: bool,
    big: bool,
    table_addr: u64,
    specs: &[Spec],
) -> Vec<u8> {
    let size = entry_size(layout, is64);
    let mut out = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let at = table_addr + (i * size) as u64;
        let rel = |field: u64, target: u64| put32(target.wrapping_sub(at + field) as u32, big);
        if layout == Layout::Absolute {
            if is64 {
                let w = |v: u64| {
                    if big {
                        v.to_be_bytes()
                    } else {
                        v.to_le_bytes()
                    }
                };
                out.extend_from_slice(&w(s.insn));
                out.extend_from_slice(&w(s.fixup));
            } else {
                out.extend_from_slice(&put32(s.insn as u32, big));
                out.extend_from_slice(&put32(s.fixup as u32, big));
            }
            continue;
        }
        out.extend_from_slice(&rel(0, s.insn));
        out.extend_from_slice(&rel(4, s.fixup));
        if layout == Layout::LinuxS390Handler {
            let handler = match s.third {
                ThirdSpec::Handler(h) => h.wrapping_sub(at + 8),
                _ => 0,
            };
            out.extend_from_slice(&if big {
                handler.to_be_bytes()
            } else {
                handler.to_le_bytes()
            });
            continue;
        }
        match s.third {
            ThirdSpec::None => {}
            ThirdSpec::Handler(h) => out.extend_from_slice(&rel(8, h)),
            ThirdSpec::Data(ty, data) if layout == Layout::LinuxX86 => {
                out.extend_from_slice(&put32(u32::from(ty) | (u32::from(data) << 16), big))
            }
            ThirdSpec::Data(ty, data) => {
                out.extend_from_slice(&put16(ty, big));
                out.extend_from_slice(&put16(data, big));
            }
        }
    }
    out
}

/// `n` well-formed entries in ascending insn order (n <= 4 * FUNCS): each insn inside a
/// function, each fixup in the same function or in `.text.fixup`.
pub fn sorted_specs(layout: Layout, n: usize) -> Vec<Spec> {
    (0..n)
        .map(|i| {
            let func = TEXT + (i as u64 / 4) * FUNC_SIZE;
            let insn = func + 4 + (i as u64 % 4) * 4;
            let fixup = if i % 3 == 0 {
                FIXUP_TEXT + 8 * i as u64
            } else {
                func + 0x30
            };
            let third = match layout {
                Layout::Extable | Layout::LinuxX86Legacy => {
                    ThirdSpec::Handler(if i % 2 == 0 { HANDLER0 } else { HANDLER1 })
                }
                // Most s390 entries of 5.5-5.15 have no handler (0).
                Layout::LinuxS390Handler if i % 3 != 1 => ThirdSpec::None,
                Layout::LinuxS390Handler => ThirdSpec::Handler(HANDLER0),
                Layout::LinuxPowerpc
                | Layout::LinuxArm64Legacy
                | Layout::LinuxX86Pair
                | Layout::LinuxS390Pair
                | Layout::Absolute => ThirdSpec::None,
                _ => ThirdSpec::Data(1 + (i % 2) as u16, (i % 7) as u16),
            };
            Spec { insn, fixup, third }
        })
        .collect()
}

/// A deterministic shuffle.
pub fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut x = seed | 1;
    for i in (1..out.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.swap(i, (x % (i as u64 + 1)) as usize);
    }
    out
}

/// Options for a synthetic program.
#[derive(Clone, Debug)]
pub struct Program {
    pub layout: Layout,
    pub is64: bool,
    pub big: bool,
    pub machine: u16,
    pub e_type: u16,
    pub specs: Vec<Spec>,
    /// Marker symbol (name, value); `None` for none.
    pub marker: Option<(String, u32)>,
    pub table_addr: u64,
    pub table_flags: u64,
    /// Extra bytes appended to the table.
    pub table_tail: Vec<u8>,
    pub segments: Vec<Seg>,
    pub padding_sections: usize,
    /// Extra sections appended (after the standard ones).
    pub extra: Vec<Sec>,
    /// Extra sections inserted before `__ex_table`.
    pub extra_before_table: Vec<Sec>,
}

impl Program {
    pub fn new(layout: Layout, is64: bool, big: bool, specs: Vec<Spec>) -> Self {
        Program {
            layout,
            is64,
            big,
            machine: machine_for(layout, is64, big),
            e_type: ET_EXEC,
            specs,
            marker: Some((marker_name(layout).into(), 1)),
            table_addr: TABLE,
            table_flags: SHF_ALLOC,
            table_tail: vec![],
            segments: vec![],
            padding_sections: 0,
            extra: vec![],
            extra_before_table: vec![],
        }
    }

    pub fn marker_value(mut self, v: u32) -> Self {
        if let Some(m) = &mut self.marker {
            m.1 = v;
        }
        self
    }

    pub fn elf(&self) -> Elf {
        let mut e = Elf::new(self.is64, self.big, self.machine);
        e.e_type = self.e_type;
        e.padding_sections = self.padding_sections;
        e.segments = self.segments.clone();
        let text = e.add_section(Sec::progbits(
            ".text",
            SHF_ALLOC | SHF_EXECINSTR,
            TEXT,
            vec![0; TEXT_SIZE as usize],
        ));
        let fix = e.add_section(Sec::progbits(
            ".text.fixup",
            SHF_ALLOC | SHF_EXECINSTR,
            FIXUP_TEXT,
            vec![0; 0x1000],
        ));
        for s in &self.extra_before_table {
            e.add_section(s.clone());
        }
        let mut table = table_bytes(
            self.layout,
            self.is64,
            self.big,
            self.table_addr,
            &self.specs,
        );
        table.extend_from_slice(&self.table_tail);
        let mut tsec = Sec::progbits("__ex_table", self.table_flags, self.table_addr, table);
        tsec.align = 1;
        e.add_section(tsec);
        let marker_value = self.marker.as_ref().map_or(0, |m| m.1);
        let mut data = put32(marker_value, self.big).to_vec();
        data.extend_from_slice(&[0xab; 12]);
        let data_sec = e.add_section(Sec::progbits(".data", SHF_ALLOC | SHF_WRITE, DATA, data));
        let ro = e.add_section(Sec::progbits(".rodata", SHF_ALLOC, RODATA, vec![0; 64]));
        for s in &self.extra {
            e.add_section(s.clone());
        }
        for f in 0..FUNCS {
            e.add_symbol(
                &format!("f{f}"),
                Some(text),
                TEXT + f * FUNC_SIZE,
                FUNC_SIZE,
                STT_FUNC,
            );
        }
        e.add_symbol("handler0", Some(text), HANDLER0, FUNC_SIZE, STT_FUNC);
        e.add_symbol("handler1", Some(text), HANDLER1, FUNC_SIZE, STT_FUNC);
        e.add_symbol("fixup_stubs", Some(fix), FIXUP_TEXT, 0, STT_NOTYPE);
        if let Some((name, _)) = &self.marker {
            e.add_symbol(name, Some(data_sec), DATA, 4, STT_OBJECT);
        }
        e.add_symbol("some_object", Some(data_sec), DATA + 4, 12, STT_OBJECT);
        e.add_symbol("some_rodata", Some(ro), RODATA, 64, STT_OBJECT);
        e
    }

    pub fn build(&self) -> Vec<u8> {
        self.elf().build()
    }
}

pub fn marker_name(layout: Layout) -> &'static str {
    if layout == Layout::Extable {
        "extable_main_sort_needed"
    } else {
        "main_extable_sort_needed"
    }
}
