//! Listing the entries of a table, resolved to `symbol+offset` and, where DWARF line
//! information is present, to `file:line`.

use addr2line::gimli::{self, EndianSlice, RunTimeEndian};
use serde::Serialize;

use crate::analysis::Analysis;
use crate::elf::{Endian, Image};
use crate::table::Extra;

/// An address with its names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The address (a `"0x…"` string in JSON).
    #[serde(serialize_with = "crate::report::hex")]
    pub addr: u64,
    /// `symbol+offset`, or the address in hex.
    pub symbol: String,
    /// `file:line` from DWARF, when known.
    pub line: Option<String>,
}

/// A Linux data word.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Data {
    /// The raw word.
    pub word: u32,
    /// The fixup type it encodes.
    pub ty: u16,
    /// The type's name, when known.
    pub type_name: Option<&'static str>,
}

/// One listed entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DumpEntry {
    /// Index in the table.
    pub index: usize,
    /// The instruction that may fault.
    pub insn: Place,
    /// Where execution resumes.
    pub fixup: Place,
    /// The handler function (relative-handler layouts).
    pub handler: Option<Place>,
    /// The data word (Linux layouts with data).
    pub data: Option<Data>,
}

/// The listing of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dump {
    /// The file.
    pub file: String,
    /// Its layout.
    pub layout: String,
    /// Table address (a `"0x…"` string in JSON).
    #[serde(serialize_with = "crate::report::hex")]
    pub table_addr: u64,
    /// Sort marker value, when present and readable.
    pub marker: Option<u32>,
    /// The entries.
    pub entries: Vec<DumpEntry>,
}

impl Dump {
    /// Text lines: a header, then one line per entry.
    pub fn lines(&self) -> Vec<String> {
        let marker = self.marker.map_or("none".to_string(), |v| v.to_string());
        let mut out = vec![format!(
            "{}: {} table at {:#x}, {}, marker {marker}",
            self.file,
            self.layout,
            self.table_addr,
            crate::report::count(self.entries.len(), "entry", "entries")
        )];
        for e in &self.entries {
            let mut line = format!(
                "{:>6}  insn {}  fixup {}",
                e.index,
                place(&e.insn),
                place(&e.fixup)
            );
            if let Some(h) = &e.handler {
                line += &format!("  handler {}", place(h));
            }
            if let Some(d) = &e.data {
                line += &format!(
                    "  type {} ({}) data {:#010x}",
                    d.ty,
                    d.type_name.unwrap_or("unknown"),
                    d.word
                );
            }
            out.push(line);
        }
        out
    }
}

fn place(p: &Place) -> String {
    match &p.line {
        Some(l) => format!("{:#x} <{}> {l}", p.addr, p.symbol),
        None => format!("{:#x} <{}>", p.addr, p.symbol),
    }
}

/// DWARF line lookups for one file (none when it has no usable DWARF).
pub struct Lines<'d> {
    ctx: Option<addr2line::Context<EndianSlice<'d, RunTimeEndian>>>,
}

impl<'d> Lines<'d> {
    /// Load the DWARF sections of `image`; a file without them (or with broken ones) gives
    /// lookups that find nothing.
    pub fn new(image: &Image<'d>) -> Self {
        let endian = match image.endian {
            Endian::Little => RunTimeEndian::Little,
            Endian::Big => RunTimeEndian::Big,
        };
        let load = |id: gimli::SectionId| -> Result<_, gimli::Error> {
            Ok(EndianSlice::new(
                image.bytes_of_section_named(id.name()),
                endian,
            ))
        };
        if image.bytes_of_section_named(".debug_info").is_empty() {
            return Lines { ctx: None };
        }
        let ctx = gimli::Dwarf::load(load)
            .ok()
            .and_then(|d| addr2line::Context::from_dwarf(d).ok());
        Lines { ctx }
    }

    /// `file:line` for `addr`.
    pub fn lookup(&self, addr: u64) -> Option<String> {
        let loc = self.ctx.as_ref()?.find_location(addr).ok()??;
        Some(format!(
            "{}:{}",
            loc.file.unwrap_or("??"),
            loc.line.unwrap_or(0)
        ))
    }
}

/// List the entries of an analysed file; `with_lines` adds DWARF `file:line`.
pub fn dump(a: &Analysis<'_, '_>, file: &str, with_lines: bool) -> Dump {
    let lines = with_lines.then(|| Lines::new(a.image));
    let place = |addr: u64| Place {
        addr,
        symbol: a.symbols.describe(addr),
        line: lines.as_ref().and_then(|l| l.lookup(addr)),
    };
    let entries = (0..a.table.len())
        .map(|index| {
            let e = a.table.entry(index);
            let (handler, data) = match e.extra {
                Extra::Nothing => (None, None),
                Extra::Handler(h) => (Some(place(h)), None),
                Extra::Data { word, ty } => (
                    None,
                    Some(Data {
                        word,
                        ty,
                        type_name: crate::arch::fixup_type_name(a.layout, ty),
                    }),
                ),
            };
            DumpEntry {
                index,
                insn: place(e.insn),
                fixup: place(e.fixup),
                handler,
                data,
            }
        })
        .collect();
    Dump {
        file: file.to_string(),
        layout: a.layout.name().to_string(),
        table_addr: a.table.addr,
        marker: a.marker.as_ref().and_then(|m| m.value),
        entries,
    }
}
