//! A typed, class- and byte-order-neutral view of the parts of an ELF file the tool needs:
//! the file header, the section headers, the program headers and `.symtab`.
//!
//! Parsing goes through the `object` crate's ELF reader, which handles `e_shnum == 0`,
//! `SHN_XINDEX` in `e_shstrndx` and in symbols (`SHT_SYMTAB_SHNDX`). Nothing is copied
//! except names' positions: every slice borrows from the file's bytes (usually a read-only
//! memory map), so only the headers, the symbol table and the pages actually read are touched.

use object::elf::{self as e, FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;

/// ELF class: the width of addresses and words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

impl Class {
    /// Size in bytes of an address-sized word.
    pub fn word_size(self) -> usize {
        match self {
            Class::Elf32 => 4,
            Class::Elf64 => 8,
        }
    }

    /// Truncate an address to the class's width.
    #[inline]
    pub fn mask(self, addr: u64) -> u64 {
        match self {
            Class::Elf32 => addr & 0xffff_ffff,
            Class::Elf64 => addr,
        }
    }
}

/// Byte order of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    /// `ELFDATA2LSB`.
    Little,
    /// `ELFDATA2MSB`.
    Big,
}

impl Endian {
    /// Read a `u16` at the start of `b`.
    #[inline]
    pub fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    /// Read a `u32` at the start of `b`.
    #[inline]
    pub fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    /// Read a `u64` at the start of `b`.
    #[inline]
    pub fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }

    /// Read an address-sized word of `class` at the start of `b`.
    #[inline]
    pub fn word(self, class: Class, b: &[u8]) -> u64 {
        match class {
            Class::Elf32 => u64::from(self.u32(b)),
            Class::Elf64 => self.u64(b),
        }
    }

    /// The bytes of `v` in this byte order.
    #[inline]
    pub fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// The bytes of `v` in this byte order.
    #[inline]
    pub fn u64_bytes(self, v: u64) -> [u8; 8] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

/// One section header.
#[derive(Clone, Debug)]
pub struct Section<'d> {
    /// Index in the section header table.
    pub index: usize,
    /// Name from the section header string table.
    pub name: &'d [u8],
    /// `sh_type`.
    pub kind: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_addr`.
    pub addr: u64,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
    /// `sh_info`.
    pub info: u32,
    /// `sh_link`.
    pub link: u32,
}

impl Section<'_> {
    /// `SHF_ALLOC` and `SHF_EXECINSTR`: code that is loaded.
    pub fn is_code(&self) -> bool {
        let want = e::SHF_ALLOC.0 | e::SHF_EXECINSTR.0;
        self.flags & want == want
    }

    /// `SHF_WRITE`.
    pub fn is_writable(&self) -> bool {
        self.flags & e::SHF_WRITE.0 != 0
    }

    /// Whether the section occupies bytes in the file (`sh_type != SHT_NOBITS`).
    pub fn has_file_bytes(&self) -> bool {
        self.kind != e::SHT_NOBITS.0
    }

    /// Whether `addr` lies inside the section's address range.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.addr && addr - self.addr < self.size
    }

    /// `SHT_REL` or `SHT_RELA`.
    pub fn is_relocation(&self) -> bool {
        self.kind == e::SHT_REL.0 || self.kind == e::SHT_RELA.0
    }

    /// The section name for messages.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(self.name).into_owned()
    }
}

/// One program header.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

impl Segment {
    /// A writable `PT_LOAD` segment.
    pub fn is_writable_load(&self) -> bool {
        self.kind == e::PT_LOAD.0 && self.flags & e::PF_W.0 != 0
    }

    /// Whether `[addr, addr + len)` overlaps the segment in memory.
    pub fn overlaps(&self, addr: u64, len: u64) -> bool {
        addr < self.vaddr.saturating_add(self.memsz) && self.vaddr < addr.saturating_add(len.max(1))
    }
}

/// One `.symtab` symbol, decoded from the table's bytes when asked for.
#[derive(Clone, Copy, Debug)]
pub struct Symbol<'d> {
    /// `st_value`.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// `STT_*` type.
    pub kind: u8,
    /// Section index, with `SHN_XINDEX` resolved; `None` for undefined and special indices.
    pub section: Option<usize>,
    /// `st_name`: the offset of the name in `strtab`.
    name_offset: usize,
    /// The linked string table.
    strtab: &'d [u8],
}

impl<'d> Symbol<'d> {
    /// `STT_OBJECT`.
    pub fn is_object(&self) -> bool {
        self.kind == e::STT_OBJECT.0
    }

    /// The name, from the linked string table up to its NUL (empty when `st_name` lies
    /// outside the table; up to the table's end when no NUL follows).
    pub fn name(&self) -> &'d [u8] {
        let rest = self.strtab.get(self.name_offset..).unwrap_or(&[]);
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..len]
    }

    /// Whether the name is `name`, reading only `name.len() + 1` bytes of the string table.
    pub fn name_is(&self, name: &[u8]) -> bool {
        let at = self.name_offset;
        self.strtab.get(at..at + name.len()) == Some(name)
            && self.strtab.get(at + name.len()).is_none_or(|&b| b == 0)
    }

    /// The symbol without its name.
    #[inline]
    pub fn fields(&self) -> Fields {
        Fields {
            value: self.value,
            size: self.size,
            kind: self.kind,
            section: self.section,
        }
    }

    /// The first two bytes of the name, zero-padded when it is shorter.
    #[inline]
    pub fn name_start(&self) -> [u8; 2] {
        let byte = |i: usize| self.strtab.get(self.name_offset + i).copied().unwrap_or(0);
        match byte(0) {
            0 => [0, 0],
            first => [first, byte(1)],
        }
    }
}

/// `.symtab` (`SHT_SYMTAB`), read in place: symbols are decoded one at a time, so a pass
/// over the table touches its bytes and nothing else (names only when asked for).
#[derive(Clone, Copy, Debug)]
pub struct SymbolTable<'d> {
    /// The entries' bytes (a whole number of entries).
    bytes: &'d [u8],
    /// The linked string table.
    strtab: &'d [u8],
    /// `SHT_SYMTAB_SHNDX` for this table, or empty.
    shndx: &'d [u8],
    class: Class,
    endian: Endian,
    /// Number of section headers: larger section indices read as `None`.
    sections: usize,
}

impl<'d> SymbolTable<'d> {
    fn entry_size(class: Class) -> usize {
        match class {
            Class::Elf32 => Sym32::SIZE,
            Class::Elf64 => Sym64::SIZE,
        }
    }

    /// Number of symbols, symbol 0 included.
    pub fn len(&self) -> usize {
        self.bytes.len() / Self::entry_size(self.class)
    }

    /// Symbol `index` (`index < len()`).
    #[inline(always)]
    pub fn get(&self, index: usize) -> Symbol<'d> {
        let (fields, b) = match self.class {
            Class::Elf32 => (
                self.fields_at::<Sym32>(index, self.endian),
                index * Sym32::SIZE,
            ),
            Class::Elf64 => (
                self.fields_at::<Sym64>(index, self.endian),
                index * Sym64::SIZE,
            ),
        };
        Symbol {
            value: fields.value,
            size: fields.size,
            kind: fields.kind,
            section: fields.section,
            // `st_name` leads both layouts.
            name_offset: self.endian.u32(&self.bytes[b..]) as usize,
            strtab: self.strtab,
        }
    }

    /// The [`Fields`] of symbol `index` (`index < len()`), laid out as `S`.
    #[inline(always)]
    fn fields_at<S: SymLayout>(&self, index: usize, endian: Endian) -> Fields {
        let b = &self.bytes[index * S::SIZE..][..S::SIZE];
        Fields {
            value: S::word(endian, &b[S::VALUE..]),
            size: S::word(endian, &b[S::SIZE_FIELD..]),
            kind: b[S::INFO] & 0xf,
            section: self.section_of(index, endian.u16(&b[S::SHNDX..])),
        }
    }

    #[inline(always)]
    fn section_of(&self, index: usize, shndx: u16) -> Option<usize> {
        let section = match shndx {
            0 => return None,
            0xffff => {
                let at = index.checked_mul(4)?;
                self.endian.u32(self.shndx.get(at..at + 4)?) as usize
            }
            s if s >= e::SHN_LORESERVE => return None,
            s => usize::from(s),
        };
        (section != 0 && section < self.sections).then_some(section)
    }

    /// Every symbol in table order, symbol 0 included.
    pub fn iter(&self) -> impl Iterator<Item = Symbol<'d>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Run `pass` over this table with a reader of [`Fields`] compiled for the file's
    /// class and byte order: the fastest way through a large table.
    #[inline]
    pub fn pass<P: FieldsPass>(&self, pass: P) -> P::Output {
        match (self.class, self.endian) {
            (Class::Elf64, Endian::Little) => pass.run(&FieldsReader::<Sym64, Le>::new(self)),
            (Class::Elf64, Endian::Big) => pass.run(&FieldsReader::<Sym64, Be>::new(self)),
            (Class::Elf32, Endian::Little) => pass.run(&FieldsReader::<Sym32, Le>::new(self)),
            (Class::Elf32, Endian::Big) => pass.run(&FieldsReader::<Sym32, Be>::new(self)),
        }
    }
}

/// A loop over a symbol table's [`Fields`] (see [`SymbolTable::pass`]).
pub trait FieldsPass {
    /// What the pass returns.
    type Output;
    /// Run over `symbols`.
    fn run<R: ReadFields>(self, symbols: &R) -> Self::Output;
}

/// The [`Fields`] of each symbol of a table.
pub trait ReadFields {
    /// Number of symbols, symbol 0 included.
    fn len(&self) -> usize;
    /// The fields of symbol `index` (`index < len()`).
    fn fields(&self, index: usize) -> Fields;
    /// The `STT_*` type of symbol `index` (`index < len()`), read alone.
    fn kind(&self, index: usize) -> u8;
    /// The `st_value` of symbol `index` (`index < len()`), read alone.
    fn value(&self, index: usize) -> u64;
}

/// [`ReadFields`] for one class and byte order.
struct FieldsReader<'t, 'd, S, O> {
    table: &'t SymbolTable<'d>,
    layout: core::marker::PhantomData<(S, O)>,
}

impl<'t, 'd, S, O> FieldsReader<'t, 'd, S, O> {
    fn new(table: &'t SymbolTable<'d>) -> Self {
        FieldsReader {
            table,
            layout: core::marker::PhantomData,
        }
    }
}

impl<S: SymLayout, O: ByteOrder> ReadFields for FieldsReader<'_, '_, S, O> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.table.bytes.len() / S::SIZE
    }

    #[inline(always)]
    fn fields(&self, index: usize) -> Fields {
        self.table.fields_at::<S>(index, O::ENDIAN)
    }

    #[inline(always)]
    fn kind(&self, index: usize) -> u8 {
        self.table.bytes[index * S::SIZE + S::INFO] & 0xf
    }

    #[inline(always)]
    fn value(&self, index: usize) -> u64 {
        S::word(O::ENDIAN, &self.table.bytes[index * S::SIZE + S::VALUE..])
    }
}

/// What a pass over a whole symbol table filters on: a [`Symbol`] without its name.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// `st_value`.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// `STT_*` type.
    pub kind: u8,
    /// Section index, as [`Symbol::section`].
    pub section: Option<usize>,
}

/// Where the fields of one `Elf32_Sym` or `Elf64_Sym` are.
trait SymLayout {
    const SIZE: usize;
    const VALUE: usize;
    const SIZE_FIELD: usize;
    const INFO: usize;
    const SHNDX: usize;
    fn word(endian: Endian, b: &[u8]) -> u64;
}

struct Sym32;
struct Sym64;

impl SymLayout for Sym32 {
    const SIZE: usize = 16;
    const VALUE: usize = 4;
    const SIZE_FIELD: usize = 8;
    const INFO: usize = 12;
    const SHNDX: usize = 14;
    #[inline(always)]
    fn word(endian: Endian, b: &[u8]) -> u64 {
        u64::from(endian.u32(b))
    }
}

impl SymLayout for Sym64 {
    const SIZE: usize = 24;
    const VALUE: usize = 8;
    const SIZE_FIELD: usize = 16;
    const INFO: usize = 4;
    const SHNDX: usize = 6;
    #[inline(always)]
    fn word(endian: Endian, b: &[u8]) -> u64 {
        endian.u64(b)
    }
}

/// A byte order known when the code is compiled: [`Endian`]'s reads, with the match on the
/// order folded away.
trait ByteOrder: Sync {
    const ENDIAN: Endian;
}

struct Le;
struct Be;

impl ByteOrder for Le {
    const ENDIAN: Endian = Endian::Little;
}

impl ByteOrder for Be {
    const ENDIAN: Endian = Endian::Big;
}

/// `ET_REL`, `ET_EXEC`, `ET_DYN`.
pub mod file_type {
    /// Relocatable object.
    pub const REL: u16 = object::elf::ET_REL.0;
    /// Executable.
    pub const EXEC: u16 = object::elf::ET_EXEC.0;
    /// Shared object or position-independent executable.
    pub const DYN: u16 = object::elf::ET_DYN.0;
}

/// A parsed ELF file.
#[derive(Debug)]
pub struct Image<'d> {
    /// The whole file.
    pub data: &'d [u8],
    /// Class.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// `e_type`.
    pub file_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// All section headers, index 0 included.
    pub sections: Vec<Section<'d>>,
    /// All program headers.
    pub segments: Vec<Segment>,
    /// `.symtab` (`SHT_SYMTAB`), symbol 0 included; empty when the file has none.
    pub symbols: SymbolTable<'d>,
    /// The file ranges of the ELF header, the program header table and the section header
    /// table (`(offset, length, name)`), which no write may touch.
    pub headers: [(u64, u64, &'static str); 3],
}

impl<'d> Image<'d> {
    /// Parse the headers and the symbol table of `data`.
    ///
    /// Errors are one-line descriptions of what is wrong with the file.
    pub fn parse(data: &'d [u8]) -> Result<Self, String> {
        if data.len() < 16 || &data[..4] != b"\x7fELF" {
            return Err("not an ELF file (bad magic or too short)".into());
        }
        match data[4] {
            1 => parse_as::<FileHeader32<Endianness>>(data, Class::Elf32),
            2 => parse_as::<FileHeader64<Endianness>>(data, Class::Elf64),
            c => Err(format!("unrecognized ELF class {c}")),
        }
    }

    /// Sections whose name is `name`.
    pub fn sections_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section<'d>> {
        self.sections
            .iter()
            .filter(move |s| s.name == name.as_bytes())
    }

    /// The file bytes of a section, bounds-checked.
    pub fn section_bytes(&self, s: &Section<'_>) -> Result<&'d [u8], String> {
        if !s.has_file_bytes() {
            return Ok(&[]);
        }
        self.file_slice(s.offset, s.size).ok_or_else(|| {
            format!(
                "section {} (offset {:#x}, size {:#x}) lies outside the file",
                s.display_name(),
                s.offset,
                s.size
            )
        })
    }

    /// `data[offset..offset + len]` if it is inside the file.
    pub fn file_slice(&self, offset: u64, len: u64) -> Option<&'d [u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(start..end)
    }

    /// The file offset of the `len` bytes at virtual address `addr` inside `section`,
    /// when the section has file bytes that cover them.
    pub fn file_offset_in(&self, section: &Section<'_>, addr: u64, len: u64) -> Option<u64> {
        if !section.has_file_bytes() || addr < section.addr {
            return None;
        }
        let within = addr - section.addr;
        if within.checked_add(len)? > section.size {
            return None;
        }
        let offset = section.offset.checked_add(within)?;
        self.file_slice(offset, len).map(|_| offset)
    }

    /// Find a debug or other non-loaded section's bytes by name (first match), or empty.
    pub fn bytes_of_section_named(&self, name: &str) -> &'d [u8] {
        self.sections_named(name)
            .next()
            .and_then(|s| self.section_bytes(s).ok())
            .unwrap_or(&[])
    }
}

/// The first `SHT_SYMTAB` section as a [`SymbolTable`] (empty when there is none), with
/// its string table and its `SHT_SYMTAB_SHNDX` section, all bounds-checked.
fn symbol_table<'d>(
    data: &'d [u8],
    sections: &[Section<'d>],
    class: Class,
    endian: Endian,
) -> Result<SymbolTable<'d>, String> {
    let mut table = SymbolTable {
        bytes: &[],
        strtab: &[],
        shndx: &[],
        class,
        endian,
        sections: sections.len(),
    };
    let Some(symtab) = sections.iter().find(|s| s.kind == e::SHT_SYMTAB.0) else {
        return Ok(table);
    };
    let bytes_of = |s: &Section<'d>, what: &str| -> Result<&'d [u8], String> {
        if !s.has_file_bytes() {
            return Ok(&[]);
        }
        let start = usize::try_from(s.offset).ok();
        let len = usize::try_from(s.size).ok();
        start
            .zip(len)
            .and_then(|(start, len)| data.get(start..start.checked_add(len)?))
            .ok_or_else(|| format!("{what} {} lies outside the file", s.display_name()))
    };
    let entries = bytes_of(symtab, "symbol table")?;
    let whole = entries.len() - entries.len() % SymbolTable::entry_size(class);
    table.bytes = &entries[..whole];
    let strtab = sections
        .get(symtab.link as usize)
        .filter(|s| s.index != 0 && s.kind == e::SHT_STRTAB.0)
        .ok_or_else(|| "the symbol table links to no string table".to_string())?;
    table.strtab = bytes_of(strtab, "string table")?;
    if let Some(shndx) = sections
        .iter()
        .find(|s| s.kind == e::SHT_SYMTAB_SHNDX.0 && s.link as usize == symtab.index)
    {
        table.shndx = bytes_of(shndx, "extended section index table")?;
    }
    Ok(table)
}

fn header_ranges<Elf: FileHeader<Endian = Endianness>>(
    header: &Elf,
    endian: Endianness,
    segments: usize,
    sections: usize,
) -> [(u64, u64, &'static str); 3] {
    let ph_len = segments as u64 * u64::from(header.e_phentsize(endian));
    let sh_len = sections as u64 * u64::from(header.e_shentsize(endian));
    [
        (0, u64::from(header.e_ehsize(endian)), "the ELF header"),
        (header.e_phoff(endian).into(), ph_len, "the program headers"),
        (header.e_shoff(endian).into(), sh_len, "the section headers"),
    ]
}

/// The bytes of the section name table (`e_shstrndx`) as `object` finds them: `None` when
/// they lie outside the file, which makes every name invalid. (Names are then read here
/// rather than through `object`, whose string lookup starts `memchr`'s CPU feature
/// detection: a dozen `cpuid` instructions, each a trip to the hypervisor in a virtual
/// machine, which cost more than reading the headers.)
fn section_names<'d, Elf: FileHeader<Endian = Endianness>>(
    header: &Elf,
    endian: Endianness,
    data: &'d [u8],
) -> Result<Option<&'d [u8]>, String> {
    let err = |e: object::read::Error| e.to_string();
    let headers = header.section_headers(endian, data).map_err(err)?;
    if headers.is_empty() {
        return Ok(Some(&[]));
    }
    let index = header.shstrndx(endian, data).map_err(err)?;
    let sh = headers
        .get(index as usize)
        .ok_or("Invalid ELF e_shstrndx")?;
    let Some((offset, size)) = sh.file_range(endian) else {
        return Ok(Some(&[]));
    };
    let end = offset
        .checked_add(size)
        .ok_or("Invalid ELF shstrtab size")?;
    let (start, end) = (usize::try_from(offset), usize::try_from(end));
    Ok(match (start, end) {
        (Ok(start), Ok(end)) => data.get(start..end),
        _ => None,
    })
}

/// The name at `offset` in the section name table `names`, up to its NUL.
fn section_name(names: Option<&[u8]>, offset: u32) -> Result<&[u8], String> {
    let rest = names.and_then(|n| n.get(usize::try_from(offset).ok()?..));
    let name = rest.and_then(|r| Some(&r[..r.iter().position(|&b| b == 0)?]));
    name.ok_or_else(|| "Invalid ELF section name offset".to_string())
}

fn parse_as<'d, Elf: FileHeader<Endian = Endianness>>(
    data: &'d [u8],
    class: Class,
) -> Result<Image<'d>, String> {
    let err = |e: object::read::Error| e.to_string();
    let header = Elf::parse(data).map_err(err)?;
    let endian = header.endian().map_err(err)?;
    if usize::from(header.e_ehsize(endian)) != core::mem::size_of::<Elf>() {
        return Err(format!(
            "unrecognized ELF header size {}",
            header.e_ehsize(endian)
        ));
    }
    let table = header.sections(endian, data).map_err(err)?;
    let names = section_names(header, endian, data)?;
    let mut sections = Vec::with_capacity(table.len());
    for (index, sh) in table.enumerate() {
        sections.push(Section {
            index: index.0,
            name: section_name(names, sh.sh_name(endian))?,
            kind: sh.sh_type(endian).0,
            flags: sh.sh_flags(endian).0,
            addr: sh.sh_addr(endian).into(),
            offset: sh.sh_offset(endian).into(),
            size: sh.sh_size(endian).into(),
            info: sh.sh_info(endian),
            link: sh.sh_link(endian),
        });
    }
    let segments: Vec<Segment> = header
        .program_headers(endian, data)
        .map_err(err)?
        .iter()
        .map(|ph| Segment {
            kind: ph.p_type(endian).0,
            flags: ph.p_flags(endian).0,
            vaddr: ph.p_vaddr(endian).into(),
            memsz: ph.p_memsz(endian).into(),
        })
        .collect();
    let byte_order = if header.is_big_endian() {
        Endian::Big
    } else {
        Endian::Little
    };
    let symbols = symbol_table(data, &sections, class, byte_order)?;
    Ok(Image {
        data,
        class,
        endian: byte_order,
        file_type: header.e_type(endian).0,
        machine: header.e_machine(endian).0,
        headers: header_ranges(header, endian, segments.len(), sections.len()),
        sections,
        segments,
        symbols,
    })
}
