//! A small ELF writer for synthetic test files: any class, any byte order, any machine,
//! optional program headers, and (with enough sections) `SHN_XINDEX`, `e_shnum == 0` and
//! `SHT_SYMTAB_SHNDX`. Written independently of the tool's reader on purpose.

#![allow(dead_code)]

pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_RELA: u32 = 4;
pub const SHT_NOBITS: u32 = 8;
pub const SHT_REL: u32 = 9;
pub const SHT_SYMTAB_SHNDX: u32 = 18;
pub const SHF_WRITE: u64 = 1;
pub const SHF_ALLOC: u64 = 2;
pub const SHF_EXECINSTR: u64 = 4;
pub const STT_NOTYPE: u8 = 0;
pub const STT_OBJECT: u8 = 1;
pub const STT_FUNC: u8 = 2;
pub const STB_LOCAL: u8 = 0;
pub const STB_GLOBAL: u8 = 1;
pub const ET_REL: u16 = 1;
pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const PT_LOAD: u32 = 1;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
pub const SHN_XINDEX: u16 = 0xffff;
pub const SHN_LORESERVE: usize = 0xff00;

pub const EM_386: u16 = 3;
pub const EM_MIPS: u16 = 8;
pub const EM_PPC: u16 = 20;
pub const EM_PPC64: u16 = 21;
pub const EM_S390: u16 = 22;
pub const EM_ARM: u16 = 40;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const EM_RISCV: u16 = 243;
pub const EM_LOONGARCH: u16 = 258;

#[derive(Clone, Debug)]
pub struct Sec {
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub addr: u64,
    pub data: Vec<u8>,
    /// For SHT_NOBITS.
    pub nobits_size: u64,
    pub align: u64,
    pub info: u32,
    pub link: u32,
}

impl Sec {
    pub fn progbits(name: &str, flags: u64, addr: u64, data: Vec<u8>) -> Self {
        Sec {
            name: name.into(),
            sh_type: SHT_PROGBITS,
            flags,
            addr,
            data,
            nobits_size: 0,
            align: 4,
            info: 0,
            link: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SymDef {
    pub name: String,
    pub value: u64,
    pub size: u64,
    pub kind: u8,
    pub bind: u8,
    /// Index into `Elf::sections` (not the final section index).
    pub section: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
pub struct Seg {
    pub vaddr: u64,
    pub memsz: u64,
    pub flags: u32,
}

#[derive(Clone, Debug)]
pub struct Elf {
    pub is64: bool,
    pub big: bool,
    pub machine: u16,
    pub e_type: u16,
    pub sections: Vec<Sec>,
    pub symbols: Vec<SymDef>,
    pub segments: Vec<Seg>,
    /// Empty sections inserted before the user's, to push their indices past 0xff00.
    pub padding_sections: usize,
}

struct Out {
    big: bool,
    is64: bool,
    buf: Vec<u8>,
}

impl Out {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u64(&mut self, v: u64) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn word(&mut self, v: u64) {
        if self.is64 {
            self.u64(v)
        } else {
            self.u32(v as u32)
        }
    }
    fn align(&mut self, a: u64) {
        while !(self.buf.len() as u64).is_multiple_of(a.max(1)) {
            self.buf.push(0);
        }
    }
}

struct Strtab {
    bytes: Vec<u8>,
}

impl Strtab {
    fn new() -> Self {
        Strtab { bytes: vec![0] }
    }
    fn add(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        at
    }
}

struct Header {
    name: u32,
    sh_type: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

impl Elf {
    pub fn new(is64: bool, big: bool, machine: u16) -> Self {
        Elf {
            is64,
            big,
            machine,
            e_type: ET_EXEC,
            sections: vec![],
            symbols: vec![],
            segments: vec![],
            padding_sections: 0,
        }
    }

    pub fn add_section(&mut self, s: Sec) -> usize {
        self.sections.push(s);
        self.sections.len() - 1
    }

    pub fn add_symbol(
        &mut self,
        name: &str,
        section: Option<usize>,
        value: u64,
        size: u64,
        kind: u8,
    ) {
        self.symbols.push(SymDef {
            name: name.into(),
            value,
            size,
            kind,
            bind: STB_GLOBAL,
            section,
        });
    }

    pub fn section_index(&self, user: usize) -> usize {
        1 + self.padding_sections + user
    }

    /// Serialise.
    pub fn build(&self) -> Vec<u8> {
        let mut o = Out {
            big: self.big,
            is64: self.is64,
            buf: vec![],
        };
        let (ehsize, phentsize, shentsize, symsize) = if self.is64 {
            (64, 56, 64, 24)
        } else {
            (52, 32, 40, 16)
        };
        // Leave room for the header and program headers.
        o.buf.resize(ehsize + phentsize * self.segments.len(), 0);
        let mut shstr = Strtab::new();
        let mut headers = vec![Header {
            name: 0,
            sh_type: 0,
            flags: 0,
            addr: 0,
            offset: 0,
            size: 0,
            link: 0,
            info: 0,
            align: 0,
            entsize: 0,
        }];
        for _ in 0..self.padding_sections {
            headers.push(Header {
                name: 0,
                sh_type: SHT_PROGBITS,
                flags: 0,
                addr: 0,
                offset: 0,
                size: 0,
                link: 0,
                info: 0,
                align: 1,
                entsize: 0,
            });
        }
        for s in &self.sections {
            o.align(s.align);
            let offset = o.buf.len() as u64;
            let size = if s.sh_type == SHT_NOBITS {
                s.nobits_size
            } else {
                o.buf.extend_from_slice(&s.data);
                s.data.len() as u64
            };
            headers.push(Header {
                name: shstr.add(&s.name),
                sh_type: s.sh_type,
                flags: s.flags,
                addr: s.addr,
                offset,
                size,
                link: s.link,
                info: s.info,
                align: s.align,
                entsize: 0,
            });
        }
        // Symbols: null, then locals-first is not needed for the reader; all global.
        let mut strtab = Strtab::new();
        let mut syms = Out {
            big: self.big,
            is64: self.is64,
            buf: vec![0; symsize],
        };
        let mut shndx = Out {
            big: self.big,
            is64: self.is64,
            buf: vec![0; 4],
        };
        let mut need_shndx = false;
        for s in &self.symbols {
            let name = strtab.add(&s.name);
            let real = s.section.map(|i| self.section_index(i));
            let st_shndx = match real {
                None => 0u16,
                Some(i) if i >= SHN_LORESERVE => {
                    need_shndx = true;
                    SHN_XINDEX
                }
                Some(i) => i as u16,
            };
            shndx.u32(real.unwrap_or(0) as u32);
            let info = (s.bind << 4) | s.kind;
            if self.is64 {
                syms.u32(name);
                syms.u8(info);
                syms.u8(0);
                syms.u16(st_shndx);
                syms.u64(s.value);
                syms.u64(s.size);
            } else {
                syms.u32(name);
                syms.u32(s.value as u32);
                syms.u32(s.size as u32);
                syms.u8(info);
                syms.u8(0);
                syms.u16(st_shndx);
            }
        }
        let symtab_index = headers.len();
        let strtab_index = symtab_index + 1;
        o.align(8);
        let sym_off = o.buf.len() as u64;
        o.buf.extend_from_slice(&syms.buf);
        headers.push(Header {
            name: shstr.add(".symtab"),
            sh_type: SHT_SYMTAB,
            flags: 0,
            addr: 0,
            offset: sym_off,
            size: syms.buf.len() as u64,
            link: strtab_index as u32,
            info: 1,
            align: 8,
            entsize: symsize as u64,
        });
        let str_off = o.buf.len() as u64;
        o.buf.extend_from_slice(&strtab.bytes);
        headers.push(Header {
            name: shstr.add(".strtab"),
            sh_type: SHT_STRTAB,
            flags: 0,
            addr: 0,
            offset: str_off,
            size: strtab.bytes.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        });
        if need_shndx {
            o.align(4);
            let off = o.buf.len() as u64;
            o.buf.extend_from_slice(&shndx.buf);
            headers.push(Header {
                name: shstr.add(".symtab_shndx"),
                sh_type: SHT_SYMTAB_SHNDX,
                flags: 0,
                addr: 0,
                offset: off,
                size: shndx.buf.len() as u64,
                link: symtab_index as u32,
                info: 0,
                align: 4,
                entsize: 4,
            });
        }
        let shstrndx = headers.len();
        let shstr_name = shstr.add(".shstrtab");
        let shstr_off = o.buf.len() as u64;
        o.buf.extend_from_slice(&shstr.bytes);
        headers.push(Header {
            name: shstr_name,
            sh_type: SHT_STRTAB,
            flags: 0,
            addr: 0,
            offset: shstr_off,
            size: shstr.bytes.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        });
        let shnum = headers.len();
        if shnum >= SHN_LORESERVE {
            headers[0].size = shnum as u64;
        }
        if shstrndx >= SHN_LORESERVE {
            headers[0].link = shstrndx as u32;
        }
        o.align(8);
        let shoff = o.buf.len() as u64;
        for h in &headers {
            o.u32(h.name);
            o.u32(h.sh_type);
            o.word(h.flags);
            o.word(h.addr);
            o.word(h.offset);
            o.word(h.size);
            o.u32(h.link);
            o.u32(h.info);
            o.word(h.align);
            o.word(h.entsize);
        }
        // File header and program headers at the front.
        let mut hdr = Out {
            big: self.big,
            is64: self.is64,
            buf: vec![],
        };
        hdr.buf.extend_from_slice(b"\x7fELF");
        hdr.u8(if self.is64 { 2 } else { 1 });
        hdr.u8(if self.big { 2 } else { 1 });
        hdr.u8(1);
        hdr.buf.resize(16, 0);
        hdr.u16(self.e_type);
        hdr.u16(self.machine);
        hdr.u32(1);
        hdr.word(0); // e_entry
        hdr.word(if self.segments.is_empty() {
            0
        } else {
            ehsize as u64
        });
        hdr.word(shoff);
        hdr.u32(0); // e_flags
        hdr.u16(ehsize as u16);
        hdr.u16(phentsize as u16);
        hdr.u16(self.segments.len() as u16);
        hdr.u16(shentsize as u16);
        hdr.u16(if shnum >= SHN_LORESERVE {
            0
        } else {
            shnum as u16
        });
        hdr.u16(if shstrndx >= SHN_LORESERVE {
            SHN_XINDEX
        } else {
            shstrndx as u16
        });
        for s in &self.segments {
            if self.is64 {
                hdr.u32(PT_LOAD);
                hdr.u32(s.flags);
                hdr.u64(0);
                hdr.u64(s.vaddr);
                hdr.u64(s.vaddr);
                hdr.u64(0);
                hdr.u64(s.memsz);
                hdr.u64(0x1000);
            } else {
                hdr.u32(PT_LOAD);
                hdr.u32(0);
                hdr.u32(s.vaddr as u32);
                hdr.u32(s.vaddr as u32);
                hdr.u32(0);
                hdr.u32(s.memsz as u32);
                hdr.u32(s.flags);
                hdr.u32(0x1000);
            }
        }
        o.buf[..hdr.buf.len()].copy_from_slice(&hdr.buf);
        o.buf
    }
}
