//! `extable-tool`: sort, check and dump exception tables (`__ex_table`) in ELF files, as a
//! command-line tool and as a library for build scripts, xtasks and linker wrappers.
//!
//! Linux sorts its table at build time with `scripts/sorttable` and checks it with modpost;
//! this crate does both, for this project's table format ([`extable_runtime::entry`]) and for
//! Linux's layouts ([`Layout`]).
//!
//! # Operations
//!
//! * [`sort_file`]: check, then sort `__ex_table` and clear the sort marker, writing
//!   atomically (in place or to another file). Every check passes before any byte is written.
//! * [`check_file`]: validate the table ([`check`] lists the rules).
//! * [`dump_file`]: list the entries with `symbol+offset` and DWARF `file:line`.
//! * [`link::link`]: run the real linker, then sort and check its output in place.
//!
//! Only the table bytes and the marker word change (plus, for Linux layouts, the zero-filled
//! relocations of the table, as `scripts/sorttable` does). For Linux layouts the result is
//! byte-identical to `scripts/sorttable` of Linux 6.1 for the `__ex_table` part; the ORC and
//! `__mcount_loc` sorting that sorttable can also do is not done here.
//!
//! # Cost
//!
//! `check` and `sort` map the file read-only and touch only the headers, the symbol table
//! and the table, which they read in file order; the self-relative layouts are sorted as
//! compact records, by buckets, on two threads ([`records`]). The pages of the file are
//! given back once read, so the peak memory is about 14 bytes per entry (the sorted records
//! and an index) plus the symbols. `benches/sort_check.rs` measures 10^6 entries in a
//! 100 MiB file against reading the file once. Writing the result copies the file (a
//! reflink where the file system has them) and syncs it: that is the larger cost.
//!
//! # Layout detection
//!
//! `extable_main_sort_needed` (this project's marker) means [`Layout::Extable`];
//! `main_extable_sort_needed` (Linux's) means the layout `scripts/sorttable` uses for the
//! file's `e_machine` (for x86, the entries tell 4.6-5.15 handlers from 5.16+ data words).
//! Both markers, neither marker, an unknown machine, LoongArch, or an x86 table that mixes
//! the two forms is refused; `--layout` (or [`Options::layout`]) forces a layout.
//!
//! # Exit codes
//!
//! `0` done / clean (warnings and notes allowed); `1` refused or errors found (or warnings,
//! with `check --deny-warnings`); `2` a file could not be read, parsed or written (missing,
//! read-only, truncated, malformed) or the command line is wrong. With several files the
//! worst code wins. Every error is one line naming the file. `--format json` prints one
//! document in the [`json`] schema instead.
//!
//! # Sorting as part of the build: the linker wrapper
//!
//! Invoked as a linker, `extable-tool` runs the real linker (`$EXTABLE_TOOL_LINKER`, default
//! `rust-lld`) with the same arguments, then sorts and checks the output named by `-o` in
//! place. A failed check fails the link. It is invoked as a linker when its program name is
//! `extable-ld` (a symlink or a copy), or when its arguments can only be a link: `-flavor`
//! or a `@response` file first, or `-o` with object files (`.o`, `.a`, `.rlib`, `.so`).
//! Any other first argument that is not a subcommand is a usage error with a suggestion.
//! rustc invokes the linker of `x86_64-unknown-none` and `armv7a-none-eabi` (both
//! `linker-flavor = gnu-lld`) as `LINKER -flavor gnu ... -o OUT ...` with its sysroot's
//! `rust-lld` on `PATH`, so the wrapper needs no more configuration than:
//!
//! ```toml
//! # .cargo/config.toml of the kernel (paths are examples)
//! [target.x86_64-unknown-none]
//! linker = "/path/to/target/release/extable-tool"
//!
//! [target.armv7a-none-eabi]
//! linker = "/path/to/target/release/extable-tool"
//! ```
//!
//! or, from a harness, `cargo build --config 'target.x86_64-unknown-none.linker="…"'`
//! or `RUSTFLAGS="-C linker=/path/to/extable-tool"`. To use another real linker, set
//! `EXTABLE_TOOL_LINKER` (e.g. `ld.lld`; keep `-C linker-flavor=ld.lld` so that rustc passes
//! `-flavor gnu` only to `rust-lld`-style linkers that accept it). `EXTABLE_TOOL_LAYOUT`
//! forces a layout. The explicit form is `extable-tool link [--layout L] -- LINKER ARGS...`.
//! An output without `__ex_table` is left alone.
#![warn(missing_docs)]

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};

pub mod analysis;
pub mod arch;
pub mod check;
pub mod dump;
pub mod elf;
pub mod error;
pub mod insn;
pub mod json;
pub mod layout;
pub mod link;
pub mod records;
pub mod report;
pub mod sort;
pub mod symbols;
pub mod table;
pub mod write;

pub use analysis::Analysis;
pub use error::{Error, Failure, Problem};
pub use layout::Layout;
pub use report::{Finding, Report, Severity};

/// Options shared by every operation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Force this layout instead of detecting it.
    pub layout: Option<Layout>,
    /// Keep symbol names as they are in `.symtab` instead of demangling Rust and C++ names.
    pub no_demangle: bool,
    /// Skip the instruction-level rules ([`insn`]), which decode the functions that
    /// contain entries: for tables with entries in most of the code, where decoding it
    /// all costs more than the rest of the check.
    pub no_instructions: bool,
}

/// What [`sort_file`] did.
#[derive(Debug)]
pub struct SortOutcome {
    /// The check that passed before sorting (warnings and notes may remain).
    pub report: Report,
    /// How many entries changed slots.
    pub moved: usize,
    /// The file written, or `None` when the file was already sorted and marked in place.
    pub written: Option<PathBuf>,
}

impl SortOutcome {
    /// One line: `FILE: LAYOUT table, N entries: sorted, M entries moved` (or `already
    /// sorted and marked, file unchanged`), with the number of warnings when there are any.
    pub fn summary(&self) -> String {
        use report::count;
        let what = match self.written {
            Some(_) => format!("sorted, {} moved", count(self.moved, "entry", "entries")),
            None => "already sorted and marked, file unchanged".into(),
        };
        let warnings = match self.report.warnings {
            0 => String::new(),
            n => format!(" ({})", count(n, "warning", "warnings")),
        };
        format!(
            "{}: {} table, {}: {what}{warnings}",
            self.report.file,
            self.report.layout,
            count(self.report.entries, "entry", "entries")
        )
    }
}

/// A file mapped read-only.
pub struct Mapped {
    file: File,
    map: Option<Mmap>,
}

impl Mapped {
    /// Open and map `path`. Missing, unreadable and non-regular files are I/O errors.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let io = |m: String| Problem::io(m).in_file(path);
        let file = File::open(path).map_err(|e| io(format!("cannot open: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| io(format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(io("not a regular file".into()));
        }
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: the map is read-only and private to this process; the tool is meant for
            // build outputs that nothing else modifies while it runs (like sorttable's map).
            // A concurrent truncation could fault a read; writes never go through the map.
            Some(unsafe { Mmap::map(&file) }.map_err(|e| io(format!("cannot map: {e}")))?)
        };
        Ok(Mapped { file, map })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl records::Pages for Mapped {
    /// Drop the pages of `bytes` (when they lie in the map) from this process: they are
    /// read again from the file if touched, so the memory the table took while it was read
    /// is free for its sorted copy.
    fn release(&self, bytes: &[u8]) {
        let Some(map) = &self.map else { return };
        let base = map.as_ptr() as usize;
        let start = bytes.as_ptr() as usize;
        if bytes.is_empty() || start < base || start + bytes.len() > base + map.len() {
            return;
        }
        // SAFETY: the map is a private, read-only mapping of a file that nothing modifies
        // while the tool runs (see `open`); MADV_DONTNEED only drops this process's page
        // table entries, and the next read maps the same file pages again, so the bytes
        // any reference sees do not change. The range lies inside the map (checked above).
        let _ = unsafe {
            map.unchecked_advise_range(UncheckedAdvice::DontNeed, start - base, bytes.len())
        };
    }
}

/// Open, parse and analyse `path`, then run `f` on the analysis.
pub fn with_analysis<T>(
    path: &Path,
    opts: &Options,
    f: impl FnOnce(&Mapped, &Analysis<'_, '_>) -> Result<T, Error>,
) -> Result<T, Error> {
    analyse_mapped(&Mapped::open(path)?, path, opts, f)
}

fn analyse_mapped<T>(
    mapped: &Mapped,
    path: &Path,
    opts: &Options,
    f: impl FnOnce(&Mapped, &Analysis<'_, '_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let image =
        elf::Image::parse(mapped.bytes()).map_err(|m| Problem::malformed(m).in_file(path))?;
    let mut analysis = Analysis::new(&image, opts.layout).map_err(|p| p.in_file(path))?;
    analysis.symbols.set_demangle(!opts.no_demangle);
    analysis.instructions = !opts.no_instructions;
    f(mapped, &analysis)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Check the table of `path`.
pub fn check_file(path: &Path, opts: &Options) -> Result<Report, Error> {
    with_analysis(path, opts, |mapped, a| {
        Ok(check::check_with(a, &display(path), mapped, false).report)
    })
}

/// Check, then sort the table of `path` and clear its marker. Writes `output` when given
/// (atomically; `path` is untouched), else replaces `path` atomically. Nothing is written
/// unless every check passed.
pub fn sort_file(path: &Path, output: Option<&Path>, opts: &Options) -> Result<SortOutcome, Error> {
    let mapped = Mapped::open(path)?;
    if output.is_none() {
        write::ensure_writable(path).map_err(|p| p.in_file(path))?;
    }
    analyse_mapped(&mapped, path, opts, |mapped, a| {
        let mut checked = check::check_with(a, &display(path), mapped, true);
        let plan = sort::plan(a, &mut checked).map_err(|p| {
            let mut e = p.in_file(path);
            e.report = Some(Box::new(checked.report.clone()));
            e
        })?;
        let dest = match output {
            Some(out) => {
                if out.exists() {
                    write::ensure_writable(out).map_err(|p| p.in_file(out))?;
                }
                write::resolve_destination(out)
            }
            None if plan.is_noop() => {
                return Ok(SortOutcome {
                    report: checked.report,
                    moved: 0,
                    written: None,
                })
            }
            None => write::resolve_destination(path),
        };
        write::write_patched(mapped.file(), &dest, &plan.patches).map_err(|p| p.in_file(&dest))?;
        Ok(SortOutcome {
            report: checked.report,
            moved: plan.moved,
            written: Some(dest),
        })
    })
}

/// List the table of `path`; `with_lines` adds DWARF `file:line`.
pub fn dump_file(path: &Path, opts: &Options, with_lines: bool) -> Result<dump::Dump, Error> {
    with_analysis(path, opts, |_, a| {
        Ok(dump::dump(a, &display(path), with_lines))
    })
}

/// Analyse a file already in memory: parse, detect, check, dump (with DWARF lines) and plan
/// a sort without writing anything. For build scripts that hold the bytes, and for the
/// mutation and fuzz tests of the reader. Returns the check report.
pub fn inspect_bytes(data: &[u8], opts: &Options) -> Result<Report, Problem> {
    let image = elf::Image::parse(data).map_err(Problem::malformed)?;
    let analysis = Analysis::new(&image, opts.layout)?;
    let mut checked = check::check(&analysis, "<memory>");
    let _ = dump::dump(&analysis, "<memory>", true);
    let _ = sort::plan(&analysis, &mut checked)?;
    Ok(checked.report)
}
