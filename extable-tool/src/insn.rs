//! Instruction-level rules: each entry checked against the code it points at.
//!
//! | rule                    | severity | what                                                      |
//! |-------------------------|----------|-----------------------------------------------------------|
//! | `insn-misaligned`       | error    | insn not aligned to the instruction size of its ISA       |
//! | `fixup-misaligned`      | error    | fixup not aligned to the instruction size of its ISA      |
//! | `insn-mid-instruction`  | error    | insn inside an instruction, decoding its function         |
//! | `insn-no-memory-access` | warning  | the type means a memory access; the instruction has none  |
//! |                         | or note  | (a note where correct kernels have such dead entries)     |
//!
//! They run when the file has code bytes (a section without file bytes is skipped) and the
//! machine has rules ([`arch::isa`]): alignment on the fixed-width ISAs (arm64, A32, powerpc,
//! MIPS, LoongArch: 4 bytes; riscv, s390, Thumb-2, microMIPS: 2). On the variable-length
//! ISAs (x86, riscv, s390, Thumb-2) the function that contains the insn is decoded from its
//! symbol's start (or, in Thumb code, from the last `$t` mapping symbol, whichever is later)
//! up to the insn, which must be an instruction start; a function that does not decode up
//! to it (data in code) is not judged, and an insn found inside an instruction is decoded
//! to again from the last label before it, which must agree. Only the functions that
//! contain entries are decoded, each once, their bytes read ahead from the file rather
//! than mapped ([`crate::records::Pages::copy`]), one read per run of nearby functions: a
//! few bytes in each of many functions spread over the text. The memory-access rule runs
//! where the entry's type means an access
//! ([`arch::memory_access`]) and a decoder says what the instruction is (x86 with
//! iced-x86, arm64 by encoding group with yaxpeax-arm for the text). It warns where the type
//! makes the access certain (arm64) and notes a dead entry where correct kernels have some
//! (x86 `UACCESS`).

use std::borrow::Cow;
use std::ops::Range;

use crate::analysis::Analysis;
use crate::arch::arm::Mapped;
use crate::arch::{self, Access, Isa};
use crate::elf::{Class, Endian, Image};
use crate::records::Pages;
use crate::report::Severity;
use crate::table::{Entry, Extra};

/// A finding of the instruction-level rules, before its addresses are named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsnFinding {
    /// Severity.
    pub severity: Severity,
    /// Rule id.
    pub rule: &'static str,
    /// Entry index.
    pub index: usize,
    /// The entry.
    pub entry: Entry,
    /// The start of the instruction the insn lies in (`insn-mid-instruction`).
    pub instruction: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// The `e_flags` word of the ELF header.
fn header_flags(image: &Image<'_>) -> u32 {
    let at = match image.class {
        Class::Elf32 => 36,
        Class::Elf64 => 48,
    };
    image
        .data
        .get(at..at + 4)
        .map_or(0, |b| image.endian.u32(b))
}

/// ARM mapping symbols (`$a`, `$t`, `$d`) by address.
struct Mapping(Vec<(u64, Mapped)>);

impl Mapping {
    fn new(image: &Image<'_>) -> Self {
        if !arch::arm::MACHINES.contains(&image.machine) {
            return Mapping(Vec::new());
        }
        // Mapping symbols are untyped (the ARM ELF ABI), named `$a`, `$t` or `$d`, with an
        // optional `.suffix`: only the names that start with `$` are read in full.
        let mut v: Vec<_> = image
            .symbols
            .iter()
            .filter(|s| s.kind == object::elf::STT_NOTYPE.0 && s.section.is_some())
            .filter(|s| s.name_start()[0] == b'$')
            .filter_map(|s| Some((s.value, arch::arm::mapping_symbol(s.name())?)))
            .collect();
        v.sort_unstable_by_key(|m| m.0);
        Mapping(v)
    }

    /// The last mapping symbol at or below `addr`.
    fn at(&self, addr: u64) -> Option<(u64, Mapped)> {
        let k = self.0.partition_point(|m| m.0 <= addr);
        k.checked_sub(1).map(|k| self.0[k])
    }

    /// Whether `addr` is in Thumb code; without mapping symbols, Thumb (the 2-byte rule is
    /// the one that holds for both instruction sets).
    fn thumb(&self, addr: u64) -> bool {
        match self.at(addr) {
            Some((_, kind)) => kind != Mapped::A32,
            None => true,
        }
    }
}

/// The most bytes an instruction takes on any ISA the rules decode (x86: 15).
const MAX_INSTRUCTION: u64 = 16;

/// Code ranges this close in the file are read as one: copying the bytes between them
/// costs less than another read.
const READ_GAP: usize = 4096;

/// At most this much code is read ahead (a kernel's functions with entries hold tens of
/// KiB); what lies beyond is read when decoded, so memory stays bounded on any file.
const READ_AHEAD_MAX: usize = 4 << 20;

/// Tables with more entries to decode than this (far more than a kernel has) are not read
/// ahead: ordering their ranges would cost more than the reads it saves.
const READ_AHEAD_ENTRIES: usize = 1 << 16;

/// What the rules need from one file.
struct Code<'a, 'i, 'd> {
    a: &'a Analysis<'i, 'd>,
    /// Where the code bytes the rules decode are read from.
    pages: &'a dyn Pages,
    /// The code the rules will decode, read ahead ([`Code::read_ahead`]): runs of file
    /// bytes by file offset, ascending.
    read: Vec<(usize, Vec<u8>)>,
    /// How much may be read ahead ([`READ_AHEAD_MAX`]).
    read_ahead_max: usize,
    flags: u32,
    mapping: Mapping,
    /// The byte order of instructions (ARM BE8 images keep them little-endian).
    code_endian: Endian,
}

impl Code<'_, '_, '_> {
    fn isa(&self, addr: u64) -> Option<Isa> {
        arch::isa(self.a.image.machine, self.flags, self.mapping.thumb(addr))
    }

    /// The code bytes from `addr` to the end of its section, when it has bytes in the file.
    fn bytes_from(&self, addr: u64) -> Option<&[u8]> {
        let section = self.a.symbols.code_section(addr)?;
        let bytes = self.a.image.section_bytes(section).ok()?;
        bytes.get(usize::try_from(addr - section.addr).ok()?..)
    }

    /// The file offsets of the code bytes from `addr` up to `end` (or its section's end),
    /// when its section has bytes in the file.
    fn file_range(&self, addr: u64, end: u64) -> Option<Range<usize>> {
        let section = self.a.symbols.code_section(addr)?;
        if !section.has_file_bytes() {
            return None;
        }
        let bytes = self.a.image.section_bytes(section).ok()?;
        let from = usize::try_from(addr - section.addr).ok()?;
        let rest = bytes.len().checked_sub(from)?;
        let len = usize::try_from(end.saturating_sub(addr)).map_or(rest, |n| n.min(rest));
        let start = usize::try_from(section.offset).ok()?.checked_add(from)?;
        Some(start..start + len)
    }

    /// Read the code bytes from each `(addr, end)` of `wanted` ahead, with one
    /// [`Pages::copy`] per run of ranges less than [`READ_GAP`] apart, up to
    /// [`READ_AHEAD_MAX`] bytes: the rules read a few bytes in each of many functions, and
    /// in a kernel those cluster.
    fn read_ahead(&mut self, wanted: impl Iterator<Item = (u64, u64)>) {
        let mut ranges: Vec<Range<usize>> = wanted
            .filter_map(|(addr, end)| self.file_range(addr, end))
            .collect();
        ranges.sort_unstable_by_key(|r| r.start);
        let mut runs: Vec<Range<usize>> = Vec::new();
        for r in ranges {
            match runs.last_mut() {
                Some(run) if r.start <= run.end.saturating_add(READ_GAP) => {
                    run.end = run.end.max(r.end);
                }
                _ => runs.push(r),
            }
        }
        let data = self.a.image.data;
        let mut budget = self.read_ahead_max;
        self.read = runs
            .into_iter()
            .filter(|run| match budget.checked_sub(run.len()) {
                Some(left) => {
                    budget = left;
                    true
                }
                None => false,
            })
            .map(|run| (run.start, self.pages.copy(&data[run])))
            .collect();
    }

    /// The code bytes from `addr` up to `end` (or its section's end): from what was read
    /// ahead, else read now through [`Pages::copy`].
    fn copy(&self, addr: u64, end: u64) -> Option<Cow<'_, [u8]>> {
        let range = self.file_range(addr, end)?;
        let k = self.read.partition_point(|(at, _)| *at <= range.start);
        if let Some((at, bytes)) = k.checked_sub(1).map(|k| &self.read[k]) {
            if let Some(b) = bytes.get(range.start - at..range.end - at) {
                return Some(Cow::Borrowed(b));
            }
        }
        Some(Cow::Owned(self.pages.copy(&self.a.image.data[range])))
    }

    /// Where decoding starts to reach `insn`: its function's start, or in Thumb code the
    /// last `$t` mapping symbol if later. `None` when no function contains `insn`.
    fn decode_start(&self, insn: u64) -> Option<u64> {
        let (start, _) = self.a.symbols.function_containing(insn)?;
        match self.mapping.at(insn) {
            Some((at, Mapped::Thumb)) if at > start => Some(at),
            Some((_, Mapped::Data)) => None, // data: nothing to decode
            _ => Some(start),
        }
    }
}

/// Run the instruction-level rules over every entry of an analysed file.
pub fn check(a: &Analysis<'_, '_>, pages: &dyn Pages) -> Vec<InsnFinding> {
    check_reading_ahead(a, pages, READ_AHEAD_MAX)
}

/// [`check`], reading at most `read_ahead_max` bytes of code ahead.
pub(crate) fn check_reading_ahead(
    a: &Analysis<'_, '_>,
    pages: &dyn Pages,
    read_ahead_max: usize,
) -> Vec<InsnFinding> {
    let flags = header_flags(a.image);
    let mut code = Code {
        a,
        pages,
        read: Vec::new(),
        read_ahead_max,
        flags,
        mapping: Mapping::new(a.image),
        code_endian: arch::code_endian(a.image.machine, flags, a.image.endian),
    };
    if !a.symbols.has_code() || code.isa(0).is_none() || !a.table.size_is_whole() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut walks = Vec::new();
    let mut typed = Vec::new();
    for index in 0..a.table.len() {
        let e = a.table.entry(index);
        if !check_alignment(&code, index, &e, &mut out) {
            continue;
        }
        let Some(isa) = code.isa(e.insn) else {
            continue;
        };
        if isa.variable_length() {
            if let Some(start) = code.decode_start(e.insn) {
                walks.push((start, e.insn, index));
            }
        }
        if let Extra::Data { ty, .. } = e.extra {
            if let Some(access) = arch::memory_access(a.layout, ty) {
                typed.push((index, e, access));
            }
        }
    }
    walks.sort_unstable();
    if walks.len() + typed.len() <= READ_AHEAD_ENTRIES {
        let functions = walks.chunk_by(|x, y| x.0 == y.0).map(walk_range);
        let instructions = typed
            .iter()
            .map(|(_, e, _)| (e.insn, e.insn.saturating_add(MAX_INSTRUCTION)));
        code.read_ahead(functions.chain(instructions));
    }
    let mid = check_instruction_starts(&code, &mut walks, &mut out);
    for (index, e, access) in typed {
        if mid.binary_search(&index).is_err() {
            check_memory_access(&code, index, &e, access, &mut out);
        }
    }
    out
}

/// The alignment rules; `false` when the insn is misaligned (nothing more to judge).
fn check_alignment(
    code: &Code<'_, '_, '_>,
    index: usize,
    e: &Entry,
    out: &mut Vec<InsnFinding>,
) -> bool {
    let mut insn_ok = true;
    for (role, rule, addr) in [
        ("insn", "insn-misaligned", e.insn),
        ("fixup", "fixup-misaligned", e.fixup),
    ] {
        if code.a.symbols.code_section(addr).is_none() {
            insn_ok &= role != "insn";
            continue;
        }
        let Some(isa) = code.isa(addr) else { continue };
        let granule = isa.granule();
        if addr % granule == 0 {
            continue;
        }
        insn_ok &= role != "insn";
        out.push(InsnFinding {
            severity: Severity::Error,
            rule,
            index,
            entry: *e,
            instruction: None,
            message: format!(
                "{role} {addr:#x} <{}> is not {granule}-byte aligned, as every instruction of {} is",
                code.a.symbols.describe(addr),
                isa_name(code, isa)
            ),
        });
    }
    insn_ok
}

fn isa_name(code: &Code<'_, '_, '_>, isa: Isa) -> String {
    let machine = code.a.image.machine;
    match isa {
        Isa::X86(bits) => format!("x86-{bits}"),
        Isa::Halfword(_) if arch::arm::MACHINES.contains(&machine) => "Thumb-2 code".into(),
        Isa::Fixed(4) if arch::arm::MACHINES.contains(&machine) => "A32 code".into(),
        _ => arch::machine_name(machine).to_string(),
    }
}

/// Decode each function that contains entries once, from its start (`walks`: start,
/// insn, entry index), and report the insns that fall inside an instruction. Returns the
/// indices reported, sorted.
fn check_instruction_starts(
    code: &Code<'_, '_, '_>,
    walks: &mut [(u64, u64, usize)],
    out: &mut Vec<InsnFinding>,
) -> Vec<usize> {
    walks.sort_unstable();
    let mut found = walk_functions(code, walks);
    let mut reported: Vec<usize> = found.iter().map(|f| f.index).collect();
    reported.sort_unstable();
    out.append(&mut found);
    reported
}

/// The code that the walks of one function (sorted, same start) decode: from its start
/// to the end of the greatest insn's instruction (one that starts below the insn ends
/// within [`MAX_INSTRUCTION`] bytes of it).
fn walk_range(group: &[(u64, u64, usize)]) -> (u64, u64) {
    let start = group[0].0;
    let last = group[group.len() - 1].1;
    (start, last.saturating_add(MAX_INSTRUCTION))
}

/// [`check_instruction_starts`] over `walks`, sorted by function start.
fn walk_functions(code: &Code<'_, '_, '_>, walks: &[(u64, u64, usize)]) -> Vec<InsnFinding> {
    let mut out = Vec::new();
    for group in walks.chunk_by(|x, y| x.0 == y.0) {
        let (start, end) = walk_range(group);
        let (Some(isa), Some(bytes)) = (code.isa(start), code.copy(start, end)) else {
            continue;
        };
        let mut walker = Walker {
            lengths: isa.lengths(&bytes, start, code.code_endian),
            pc: start,
            last: start,
        };
        for &(_, insn, index) in group {
            match walker.reach(insn) {
                Reach::Start => {}
                Reach::Unknown => break,
                Reach::Inside(at) => {
                    if let Some(at) = confirm_inside(code, isa, start, insn, at) {
                        out.push(mid_instruction(code, index, at));
                    }
                }
            }
        }
    }
    out
}

/// Decode again from the last label between the function's start and `insn` (labels
/// mark instruction starts; code after data or in another mode decodes out of step from
/// the function's start). The instruction `insn` is inside, or `None` when it is a label
/// or an instruction start from there.
fn confirm_inside(
    code: &Code<'_, '_, '_>,
    isa: Isa,
    start: u64,
    insn: u64,
    at: u64,
) -> Option<u64> {
    let label = code
        .a
        .symbols
        .named_at_or_below(insn)
        .filter(|&l| l > start);
    let Some(label) = label else {
        return Some(at);
    };
    if label == insn {
        return None;
    }
    let bytes = code.bytes_from(label)?;
    let mut walker = Walker {
        lengths: isa.lengths(bytes, label, code.code_endian),
        pc: label,
        last: label,
    };
    match walker.reach(insn) {
        Reach::Inside(at) => Some(at),
        Reach::Start | Reach::Unknown => None,
    }
}

/// Where an address falls when a function is decoded from its start.
enum Reach {
    /// On an instruction start.
    Start,
    /// Inside the instruction that starts at this address.
    Inside(u64),
    /// The decoding stopped before it (undecodable bytes or the end of the section).
    Unknown,
}

/// A linear decoding of one function, advanced to ascending addresses.
struct Walker<'b> {
    /// The lengths of the instructions from `pc` on.
    lengths: Box<dyn Iterator<Item = u64> + 'b>,
    /// The next instruction start.
    pc: u64,
    /// The last instruction start below `pc`.
    last: u64,
}

impl Walker<'_> {
    fn reach(&mut self, addr: u64) -> Reach {
        while self.pc < addr {
            let Some(len) = self.lengths.next() else {
                return Reach::Unknown;
            };
            self.last = self.pc;
            self.pc += len;
        }
        if self.pc == addr {
            Reach::Start
        } else {
            Reach::Inside(self.last)
        }
    }
}

fn mid_instruction(code: &Code<'_, '_, '_>, index: usize, at: u64) -> InsnFinding {
    let e = code.a.table.entry(index);
    let symbols = &code.a.symbols;
    InsnFinding {
        severity: Severity::Error,
        rule: "insn-mid-instruction",
        index,
        entry: e,
        instruction: Some(at),
        message: format!(
            "insn {:#x} <{}> is inside the instruction at {at:#x} <{}>, decoding its function from the start",
            e.insn,
            symbols.describe(e.insn),
            symbols.describe(at)
        ),
    }
}

fn check_memory_access(
    code: &Code<'_, '_, '_>,
    index: usize,
    e: &Entry,
    access: Access,
    out: &mut Vec<InsnFinding>,
) {
    let end = e.insn.saturating_add(MAX_INSTRUCTION);
    let (Some(isa), Some(bytes)) = (code.isa(e.insn), code.copy(e.insn, end)) else {
        return;
    };
    let Some(decoded) = arch::decode(isa, code.a.image.machine, &bytes, e.insn) else {
        return;
    };
    if decoded.may_access_memory {
        return;
    }
    let Extra::Data { ty, .. } = e.extra else {
        return;
    };
    let type_name = arch::fixup_type_name(code.a.layout, ty).unwrap_or("?");
    let (severity, consequence) = match access {
        Access::Always => (Severity::Warning, ""),
        Access::Usually => (Severity::Note, ": the entry can never be used"),
    };
    out.push(InsnFinding {
        severity,
        rule: "insn-no-memory-access",
        index,
        entry: *e,
        instruction: None,
        message: format!(
            "type {ty} ({type_name}) marks a memory access, but insn {:#x} <{}> is `{}`, which accesses no memory{consequence}",
            e.insn,
            code.a.symbols.describe(e.insn),
            decoded.text
        ),
    });
}
