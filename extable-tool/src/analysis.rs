//! One file understood: its table, its layout and its sort marker.

use extable_runtime::entry::{SECTION, SORT_MARKER_SYMBOL, START_SYMBOL};

use crate::arch::{self, x86, LinuxMachine};
use crate::elf::{file_type, Image, Section};
use crate::error::Problem;
use crate::layout::{Layout, LINUX_SORT_MARKER_SYMBOL};
use crate::symbols::{code_section_containing, code_sections, StartCache, Symbols};
use crate::table::Table;

/// Where the sort marker is.
#[derive(Clone, Debug)]
pub struct Marker {
    /// Symbol name.
    pub symbol: &'static str,
    /// File offset of its 32-bit word, when the word has bytes in the file.
    pub file_offset: Option<u64>,
    /// Its current value, when readable.
    pub value: Option<u32>,
}

/// A file's table, layout and marker, plus the symbol lookups the checks need.
#[derive(Debug)]
pub struct Analysis<'i, 'd> {
    /// The parsed file.
    pub image: &'i Image<'d>,
    /// The `__ex_table` section.
    pub section: &'i Section<'d>,
    /// The table.
    pub table: Table<'d>,
    /// The layout (detected or forced).
    pub layout: Layout,
    /// The marker of that layout, if the file has one.
    pub marker: Option<Marker>,
    /// Symbol and section lookups.
    pub symbols: Symbols<'i, 'd>,
    /// Whether `check` runs the instruction-level rules ([`crate::insn`]); on by default.
    pub instructions: bool,
}

type Symbol<'d> = crate::elf::Symbol<'d>;

/// The two marker symbols: for each name, the first `STT_OBJECT` symbol with it (as
/// `scripts/sorttable` looks it up), found in one pass over the symbol table.
struct MarkerSymbols<'d> {
    ours: Option<Symbol<'d>>,
    linux: Option<Symbol<'d>>,
}

impl<'d> MarkerSymbols<'d> {
    fn none() -> Self {
        MarkerSymbols {
            ours: None,
            linux: None,
        }
    }

    fn find(image: &Image<'d>) -> Self {
        let mut found = Self::none();
        for s in image.symbols.iter() {
            found.see(&s);
            if found.ours.is_some() && found.linux.is_some() {
                break;
            }
        }
        found
    }

    /// Take `s` if it is the first marker symbol of its name.
    #[inline]
    fn see(&mut self, s: &Symbol<'d>) {
        if !s.is_object() {
            return;
        }
        if self.ours.is_none() && s.name_is(SORT_MARKER_SYMBOL.as_bytes()) {
            self.ours = Some(*s);
        } else if self.linux.is_none() && s.name_is(LINUX_SORT_MARKER_SYMBOL.as_bytes()) {
            self.linux = Some(*s);
        }
    }

    /// The marker symbol of `layout`.
    fn of(&self, layout: Layout) -> Option<Symbol<'d>> {
        if layout.is_linux() {
            self.linux
        } else {
            self.ours
        }
    }
}

impl<'i, 'd> Analysis<'i, 'd> {
    /// Find the table and the marker, and settle the layout: `forced`, or detected from
    /// `e_machine` and the marker symbols. An ambiguous file is refused.
    pub fn new(image: &'i Image<'d>, forced: Option<Layout>) -> Result<Self, Problem> {
        check_file_type(image.file_type)?;
        let section = find_table_section(image)?;
        let bytes = image.section_bytes(section).map_err(Problem::malformed)?;
        let linux = linux_layout_of(image, section, bytes);
        let (markers, symbols) = scan_symbols(image, section, bytes, forced, &linux);
        let layout = match forced {
            Some(layout) => layout,
            None => detect(image, section, bytes, &symbols, &markers, linux)?,
        };
        let table = table_in(image, section, bytes, layout);
        let marker = markers
            .of(layout)
            .map(|sym| locate_marker(image, &sym, layout.marker_symbol()));
        Ok(Analysis {
            image,
            section,
            table,
            layout,
            marker,
            symbols,
            instructions: true,
        })
    }

    /// Whether the table lies in a writable loaded segment (or, without program headers, a
    /// writable section).
    pub fn table_is_writable(&self) -> bool {
        let loads: Vec<_> = self
            .image
            .segments
            .iter()
            .filter(|s| s.kind == object::elf::PT_LOAD.0)
            .collect();
        if loads.is_empty() {
            return self.section.is_writable();
        }
        loads
            .iter()
            .any(|s| s.is_writable_load() && s.overlaps(self.section.addr, self.section.size))
    }

    /// The relocation section Linux's `scripts/sorttable` (until 6.13) zero-fills after
    /// sorting: the last `SHT_REL`/`SHT_RELA` whose `sh_info` equals the index of
    /// `__ex_table` *as known when the loop reaches it* (0 before the table is seen).
    pub fn linux_zeroed_relocations(&self) -> Option<&'i Section<'d>> {
        let mut table_index = 0;
        let mut found = None;
        for s in &self.image.sections {
            if s.name == SECTION.as_bytes() {
                table_index = s.index;
            }
            if s.is_relocation() && s.info as usize == table_index {
                found = Some(s);
            }
        }
        found
    }
}

/// Tables of up to this many entries have their addresses looked up in one pass over the
/// symbol table ([`Symbols::for_addresses`]); larger ones get an index of every symbol.
const FEW_ENTRIES: usize = 1 << 14;

/// The marker symbols and the symbol lookups for this table. A small table's lookups keep
/// only what its entries' addresses need, found in the same pass over the symbol table as
/// the markers. The addresses are decoded with every layout the file can be read with:
/// `forced`, else ours and the Linux layout of `e_machine` (the marker, found in the same
/// pass, tells which); for x86 Linux files, whose layout the entries tell, the 4.6-5.15
/// layout, whose three relative words include the instruction and fixup words of the 5.16+
/// layout.
fn scan_symbols<'i, 'd>(
    image: &'i Image<'d>,
    section: &Section<'_>,
    bytes: &[u8],
    forced: Option<Layout>,
    linux: &LinuxLayout,
) -> (MarkerSymbols<'d>, Symbols<'i, 'd>) {
    // The three words of a 4.6-5.15 entry are every word of a table of whole 12-byte
    // entries, so they hold the insn and fixup words of the 5.16+ layout and of 3.5-4.5's
    // pairs; the pairs are read apart only when the size is not a multiple of 12.
    let (linux, x86_pairs) = match linux {
        LinuxLayout::X86 => (
            Some(Layout::LinuxX86Legacy),
            !table_in(image, section, bytes, Layout::LinuxX86Legacy).size_is_whole(),
        ),
        LinuxLayout::Known(layout) => (Some(*layout), false),
        LinuxLayout::Refused(_) => (None, false),
    };
    let layouts = match forced {
        Some(layout) => vec![layout],
        None => [
            Some(Layout::Extable),
            linux,
            x86_pairs.then_some(Layout::LinuxX86Pair),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    let entries = table_in(image, section, bytes, layouts[0]).len();
    if entries > FEW_ENTRIES {
        return (MarkerSymbols::find(image), Symbols::new(image));
    }
    let mut queries = Vec::with_capacity(3 * entries * layouts.len());
    let mut described = Vec::new();
    for layout in layouts {
        let table = table_in(image, section, bytes, layout);
        for i in 0..table.len() {
            let e = table.entry(i);
            queries.extend([e.insn, e.fixup]);
            if let crate::table::Extra::Handler(h) = e.extra {
                queries.push(h);
            }
        }
        // An unsorted table's report names its first pair out of order.
        let descent = (1..table.len()).find(|&i| table.key(i - 1) > table.key(i));
        if let Some(i) = descent {
            described.extend([table.entry(i - 1).insn, table.entry(i).insn]);
        }
    }
    let mut markers = MarkerSymbols::none();
    let symbols = Symbols::for_addresses_visiting(image, queries, described, |s| markers.see(s));
    (markers, symbols)
}

fn check_file_type(ty: u16) -> Result<(), Problem> {
    match ty {
        file_type::EXEC | file_type::DYN => Ok(()),
        file_type::REL => Err(Problem::refused(
            "relocatable object (ET_REL): entries are not final until linked; sort the linked executable",
        )),
        other => Err(Problem::refused(format!(
            "unsupported ELF type {other} (only ET_EXEC and ET_DYN are supported)"
        ))),
    }
}

fn find_table_section<'i, 'd>(image: &'i Image<'d>) -> Result<&'i Section<'d>, Problem> {
    let mut found = image.sections_named(SECTION);
    let section = found.next().ok_or_else(|| no_table_section(image))?;
    if found.next().is_some() {
        return Err(Problem::refused(format!("more than one {SECTION} section")));
    }
    if !section.has_file_bytes() {
        return Err(Problem::malformed(format!(
            "{SECTION} has no bytes in the file (SHT_NOBITS)"
        )));
    }
    Ok(section)
}

/// What a linker script needs so that the table has an output section of its own, which the
/// runtime bounds by its start/stop symbols and this tool finds by name.
pub(crate) const TABLE_SECTION_FIX: &str = "give the table an output section of its own in \
the linker script: `__ex_table : ALIGN(4) { __start___ex_table = .; KEEP(*(__ex_table)) \
__stop___ex_table = .; }` (or INCLUDE extable-runtime's link/extable-<arch>.ld)";

/// The refusal for a file without an `__ex_table` section; when the start symbol lies in
/// another section, the linker script merged the table there: say so, and what to add.
fn no_table_section(image: &Image<'_>) -> Problem {
    let merged_into = table_start_section(image).map(|s| s.display_name());
    match merged_into {
        Some(name) => Problem::refused(format!(
            "no {SECTION} section: the table is merged into {name}; {TABLE_SECTION_FIX}"
        )),
        None => Problem::refused(format!("no {SECTION} section")),
    }
}

/// The section `__start___ex_table` is defined in, if any.
pub(crate) fn table_start_section<'i, 'd>(image: &'i Image<'d>) -> Option<&'i Section<'d>> {
    let sym = image
        .symbols
        .iter()
        .find(|s| s.name_is(START_SYMBOL.as_bytes()))?;
    image.sections.get(sym.section?)
}

fn locate_marker(image: &Image<'_>, sym: &crate::elf::Symbol<'_>, name: &'static str) -> Marker {
    let file_offset = sym
        .section
        .and_then(|s| image.file_offset_in(&image.sections[s], sym.value, 4));
    let value = file_offset
        .and_then(|o| image.file_slice(o, 4))
        .map(|b| image.endian.u32(b));
    Marker {
        symbol: name,
        file_offset,
        value,
    }
}

/// Detect the layout from the marker symbols and `e_machine`.
fn detect(
    image: &Image<'_>,
    section: &Section<'_>,
    bytes: &[u8],
    symbols: &Symbols<'_, '_>,
    markers: &MarkerSymbols<'_>,
    machine: LinuxLayout,
) -> Result<Layout, Problem> {
    let ours = markers.ours.is_some();
    let linux = markers.linux.is_some();
    match (ours, linux) {
        (true, true) => Err(Problem::refused(format!(
            "ambiguous layout: both {SORT_MARKER_SYMBOL} and {LINUX_SORT_MARKER_SYMBOL} are defined; pass --layout"
        ))),
        (true, false) => Ok(Layout::Extable),
        (false, true) => linux_layout(image, section, bytes, symbols, machine),
        (false, false) if !has_symbol_table(image) => Err(Problem::refused(format!(
            "no symbol table (.symtab): the file is stripped, and the layout and the sort marker \
             are known by the symbols {SORT_MARKER_SYMBOL} or {LINUX_SORT_MARKER_SYMBOL}; use the \
             unstripped file"
        ))),
        (false, false) => Err(Problem::refused(format!(
            "cannot tell the table layout: neither {SORT_MARKER_SYMBOL} nor {LINUX_SORT_MARKER_SYMBOL} is defined; pass --layout"
        ))),
    }
}

/// Whether the file has a `.symtab` with any symbol besides the null one.
fn has_symbol_table(image: &Image<'_>) -> bool {
    image.symbols.len() > 1
}

/// What `e_machine`, and for a machine that changed layouts over the versions its entries,
/// say of the layout of a Linux table: read once per file, for the symbol pass and for
/// detection.
enum LinuxLayout {
    /// This layout.
    Known(Layout),
    /// x86: told by its third words, once the symbols are known ([`linux_layout`]).
    X86,
    /// No layout: why, for a file that has the Linux marker.
    Refused(String),
}

/// Read [`LinuxLayout`] from `e_machine` and, where it needs them, the entries.
fn linux_layout_of(image: &Image<'_>, section: &Section<'_>, bytes: &[u8]) -> LinuxLayout {
    match arch::linux_machine(image.machine) {
        LinuxMachine::Layout(layout) => LinuxLayout::Known(layout),
        LinuxMachine::Versions(layouts) => versioned_layout(image, section, bytes, layouts),
        LinuxMachine::X86 => LinuxLayout::X86,
        LinuxMachine::Unknown => LinuxLayout::Refused(format!(
            "Linux marker present but e_machine {} has no known Linux table layout; pass --layout",
            image.machine
        )),
    }
}

fn linux_layout(
    image: &Image<'_>,
    section: &Section<'_>,
    bytes: &[u8],
    symbols: &Symbols<'_, '_>,
    linux: LinuxLayout,
) -> Result<Layout, Problem> {
    match linux {
        LinuxLayout::Known(layout) => Ok(layout),
        LinuxLayout::Refused(why) => Err(Problem::refused(why)),
        LinuxLayout::X86 => x86_layout(image, section, bytes, symbols),
    }
}

/// The generation of an x86 table, told by its entries: 4.6-5.15's when every third word
/// is a handler (a function start); else 5.16's when the entries read with a data word are
/// [`mostly_plausible`]; else 3.5-4.5's when the table reads as mostly plausible pairs of
/// distinct instructions; else 5.16's, whose check then says what is wrong with the table, unless
/// most third words are handlers (a 4.6-5.15 table with broken handlers, refused). Whole
/// 12-byte entries are read whatever the table's size, so that a size defect does not change
/// the generation.
fn x86_layout(
    image: &Image<'_>,
    section: &Section<'_>,
    bytes: &[u8],
    symbols: &Symbols<'_, '_>,
) -> Result<Layout, Problem> {
    let legacy = table_in(image, section, bytes, Layout::LinuxX86Legacy);
    let handler = legacy.shape.relative_fields()[2];
    let n = legacy.len();
    // Handlers repeat: a small cache answers most of them.
    let mut starts = StartCache::default();
    let hits = (0..n)
        .filter(|&i| starts.is_function_start(symbols, legacy.target(i, handler)))
        .count();
    let third_words = x86::classify(hits, n);
    if third_words == x86::ThirdWord::Handlers {
        return Ok(Layout::LinuxX86Legacy);
    }
    let code = code_sections(image);
    let data = table_in(image, section, bytes, Layout::LinuxX86);
    if mostly_plausible(&data, &code) {
        return Ok(Layout::LinuxX86);
    }
    let pairs = table_in(image, section, bytes, Layout::LinuxX86Pair);
    if mostly_plausible(&pairs, &code) && x86::distinct_instructions(&pairs) {
        return Ok(Layout::LinuxX86Pair);
    }
    match third_words {
        x86::ThirdWord::Mixed => Err(Problem::refused(format!(
            "ambiguous layout: {hits} of {n} entries have a third word that points at a function \
             (4.6-5.15 handlers) and the rest do not (5.16+ data); pass --layout linux-x86 or linux-x86-4.6"
        ))),
        _ => Ok(Layout::LinuxX86),
    }
}

/// The layout of a table whose machine changed layouts over the versions (`layouts`,
/// newest first): the one that reads it as [`mostly_plausible`] entries (a table, a few
/// defective entries included, is so in its own layout only), else the newest, whose
/// check then says what is wrong with the table. Two plausible readings are refused. Whole
/// entries are read whatever the table's size, so that a size defect does not change the
/// generation.
fn versioned_layout(
    image: &Image<'_>,
    section: &Section<'_>,
    bytes: &[u8],
    layouts: &[Layout],
) -> LinuxLayout {
    let code = code_sections(image);
    let plausible: Vec<Layout> = layouts
        .iter()
        .copied()
        .filter(|&layout| {
            let table = table_in(image, section, bytes, layout);
            mostly_plausible(&table, &code)
        })
        .collect();
    match plausible[..] {
        [] => LinuxLayout::Known(layouts[0]),
        [layout] => LinuxLayout::Known(layout),
        ref several => {
            let names: Vec<_> = several.iter().map(|l| l.name()).collect();
            LinuxLayout::Refused(format!(
                "ambiguous layout: the table reads as valid entries of {}; pass --layout",
                names.join(" and ")
            ))
        }
    }
}

/// Whether more than three quarters of the whole entries of `table` are plausible
/// ([`plausible_entries`]). A table is all but a few defective entries plausible in its own
/// layout; read with another generation's layout, at most about half of it is (the pairs
/// of a 16-byte table, say), and a size defect must not tip that half over the line.
fn mostly_plausible(table: &Table<'_>, code: &[(u64, u64, usize)]) -> bool {
    !table.is_empty() && 4 * plausible_entries(table, code) > 3 * table.len()
}

/// How many entries of `table` have their insn and fixup (and handler, if any) in
/// executable `code` and, where the layout has types, a known type. An entry read with
/// another version's layout points at data or outside the file's sections, or has a type no
/// kernel knows.
fn plausible_entries(table: &Table<'_>, code: &[(u64, u64, usize)]) -> usize {
    let in_code = |addr: u64| code_section_containing(code, addr).is_some();
    let known = |e: &crate::table::Entry| match e.extra {
        crate::table::Extra::Data { ty, .. } => arch::fixup_type_name(table.layout, ty).is_some(),
        crate::table::Extra::Handler(handler) => in_code(handler),
        crate::table::Extra::Nothing => true,
    };
    (0..table.len())
        .filter(|&i| {
            let e = table.entry(i);
            in_code(e.insn) && in_code(e.fixup) && known(&e)
        })
        .count()
}

/// The table in `bytes` (those of `section`) read with `layout`.
fn table_in<'d>(
    image: &Image<'_>,
    section: &Section<'_>,
    bytes: &'d [u8],
    layout: Layout,
) -> Table<'d> {
    Table {
        layout,
        shape: layout.shape(image.class),
        class: image.class,
        endian: image.endian,
        addr: section.addr,
        file_offset: section.offset,
        bytes,
    }
}
