//! A typed, class- and byte-order-neutral view of the parts of an ELF file the tool needs:
//! the file header, the section headers, the program headers and `.symtab`.
//!
//! Parsing goes through the `object` crate's ELF reader, which handles `e_shnum == 0`,
//! `SHN_XINDEX` in `e_shstrndx` and in symbols (`SHT_SYMTAB_SHNDX`). Nothing is copied
//! except names' positions: every slice borrows from the file's bytes (usually a read-only
//! memory map), so only the headers, the symbol table and the pages actually read are touched.

use object::elf::{self as e, FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
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

/// One `.symtab` symbol.
#[derive(Clone, Debug)]
pub struct Symbol<'d> {
    /// Name from the linked string table.
    pub name: &'d [u8],
    /// `st_value`.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// `STT_*` type.
    pub kind: u8,
    /// Section index, with `SHN_XINDEX` resolved; `None` for undefined and special indices.
    pub section: Option<usize>,
}

impl Symbol<'_> {
    /// `STT_FUNC` or `STT_GNU_IFUNC`.
    pub fn is_function(&self) -> bool {
        self.kind == e::STT_FUNC.0 || self.kind == e::STT_GNU_IFUNC.0
    }

    /// `STT_OBJECT`.
    pub fn is_object(&self) -> bool {
        self.kind == e::STT_OBJECT.0
    }
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
    pub symbols: Vec<Symbol<'d>>,
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
    let mut sections = Vec::with_capacity(table.len());
    for (index, sh) in table.enumerate() {
        sections.push(Section {
            index: index.0,
            name: table.section_name(endian, sh).map_err(err)?,
            kind: sh.sh_type(endian).0,
            flags: sh.sh_flags(endian).0,
            addr: sh.sh_addr(endian).into(),
            offset: sh.sh_offset(endian).into(),
            size: sh.sh_size(endian).into(),
            info: sh.sh_info(endian),
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
    let symtab = table.symbols(endian, data, e::SHT_SYMTAB).map_err(err)?;
    let mut symbols = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.enumerate() {
        let section = symtab
            .symbol_section(endian, sym, index)
            .map_err(err)?
            .map(|s| s.0)
            .filter(|&s| s < sections.len());
        symbols.push(Symbol {
            name: symtab.symbol_name(endian, sym).map_err(err)?,
            value: sym.st_value(endian).into(),
            size: sym.st_size(endian).into(),
            kind: sym.st_type().0,
            section,
        });
    }
    Ok(Image {
        data,
        class,
        endian: if header.is_big_endian() {
            Endian::Big
        } else {
            Endian::Little
        },
        file_type: header.e_type(endian).0,
        machine: header.e_machine(endian).0,
        headers: header_ranges(header, endian, segments.len(), sections.len()),
        sections,
        segments,
        symbols,
    })
}
