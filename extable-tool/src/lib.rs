//! `extable-tool`: sort, check and dump exception tables (`__ex_table`) in ELF files, as a
//! command-line tool and as a library for build scripts, xtasks and linker wrappers.
//!
//! Linux sorts its table at build time with `scripts/sorttable` and checks it with modpost;
//! this crate does both, for this project's table format ([`extable_runtime::entry`]) and for
//! Linux's layouts ([`Layout`]).
//!
//! # Operations
//!
//! * [`sort_file`]: check, then sort `__ex_table` and clear the sort marker, in place
//!   (writing only the bytes that change) or to another file; [`sort_file_to`] also replaces
//!   the file with a sorted copy. Every check passes before any byte is written.
//! * [`check_file`]: validate the table; the [`Report`] lists the [`Finding`]s, each named
//!   by its rule.
//! * [`dump_file`]: list the entries with `symbol+offset` and DWARF `file:line`.
//! * [`link::link`]: run the real linker, then sort and check its output in place.
//! * [`check_bytes`], [`dump_bytes`], [`sort_bytes`]: the same for a file already in memory.
//!
//! Every operation takes [`Options`] and returns its outcome or an [`Error`]: one line naming
//! the file, a [`Failure`] kind with its exit code, the [`Report`] when a check refused a
//! sort, and the [`std::io::Error`] as its [`source`](std::error::Error::source) when the
//! file could not be read or written.
//!
//! # Use from an xtask or a build script
//!
//! ```toml
//! [dependencies] # or [build-dependencies]
//! extable-tool = { version = "0.1", default-features = false } # no CLI dependencies
//! ```
//!
//! ```no_run
//! use std::path::Path;
//! use extable_tool::{Failure, Options, SortTo};
//!
//! fn sort_kernel(kernel: &Path) -> Result<(), Box<dyn std::error::Error>> {
//!     let opts = Options::default();
//!     match extable_tool::sort_file_to(kernel, SortTo::InPlace, &opts) {
//!         Ok(outcome) => {
//!             // Warnings and notes do not stop a sort: show them.
//!             for line in outcome.report.lines() {
//!                 eprintln!("{line}");
//!             }
//!             eprintln!("{}", outcome.summary(SortTo::InPlace));
//!             Ok(())
//!         }
//!         Err(e) => {
//!             // A refused sort carries the check's findings; nothing was written.
//!             if let (Failure::Refused, Some(report)) = (e.failure, &e.report) {
//!                 for line in report.lines() {
//!                     eprintln!("{line}");
//!                 }
//!             }
//!             Err(e.into())
//!         }
//!     }
//! }
//! # sort_kernel(Path::new("target/x86_64-unknown-none/release/kernel")).unwrap();
//! ```
//!
//! A file that cannot be read is an [`Failure::Io`] error whose source is the I/O error:
//!
//! ```
//! use std::error::Error as _;
//! use std::io::{self, ErrorKind};
//! use std::path::Path;
//!
//! let opts = extable_tool::Options::default();
//! let err = extable_tool::check_file(Path::new("no/such/kernel"), &opts).unwrap_err();
//! assert_eq!(err.exit_code(), 2);
//! let io = err.source().and_then(|s| s.downcast_ref::<io::Error>());
//! assert_eq!(io.map(io::Error::kind), Some(ErrorKind::NotFound));
//! ```
//!
//! Only the table bytes and the marker word change (plus, for Linux layouts, the zero-filled
//! relocations of the table, as `scripts/sorttable` does). For Linux layouts the result is
//! byte-identical to `scripts/sorttable` of Linux 6.1 for the `__ex_table` part; the ORC and
//! `__mcount_loc` sorting that sorttable can also do is not done here.
//!
//! # Cost
//!
//! `check` and `sort` map the file read-only (a concurrent truncation is an error, not a
//! signal) and touch only the headers, the symbol table and the table, which
//! they read in file order. A table of up to 16,384 entries has only its entries'
//! addresses looked up, in one pass over the symbol table; the self-relative layouts are
//! sorted as compact records, by buckets. The pages of the file are given back once
//! read, so the peak memory is about 16 bytes per entry (the sorted records and an index)
//! plus the symbols. `benches/sort_check.rs` measures 10^6 entries in a
//! 100 MiB file against reading the file once. Sorting in place writes only the bytes that
//! change and syncs them; `--atomic` and `-o` copy the file (a reflink where the file
//! system has them) and sync the copy, which costs in proportion to the file.
//!
//! # Layout detection
//!
//! `extable_main_sort_needed` (this project's marker) means [`Layout::Extable`];
//! `main_extable_sort_needed` (Linux's) means a Linux layout of the file's `e_machine`;
//! where the machine changed layouts over the versions (x86, arm64, s390, riscv, LoongArch,
//! powerpc), the entries tell which generation the table is. Both markers, neither marker,
//! an unknown machine, a table that reads plausibly in two generations, or an x86 table
//! whose third words are mostly but not all handlers is refused; `--layout` (or
//! [`Options::layout`]) forces a layout.
//!
//! # Exit codes
//!
//! `0` done / clean (warnings and notes allowed); `1` refused or errors found (or warnings,
//! with `check --deny-warnings`); `2` a file could not be read, parsed or written (missing,
//! read-only, truncated, malformed, not a regular file), the report could not be written
//! (stdout full), or the command line is wrong; in link mode, `128+N` when the linker was
//! killed by signal N. With several files the worst code wins. Every error is one line
//! naming the file. `--format json` prints one document in the [`json`] schema instead.
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

// The internal tests name the crate as the integration tests do.
#[cfg(test)]
extern crate self as extable_tool;
#[cfg(test)]
#[path = "../tests/internal/mod.rs"]
mod internal_tests;

use std::path::{Path, PathBuf};

mod analysis;
mod arch;
mod check;
mod dump;
mod elf;
mod error;
mod insn;
pub mod json;
mod layout;
pub mod link;
mod mapped;
mod records;
mod report;
mod sort;
mod symbols;
mod table;
mod write;

use analysis::Analysis;
pub use dump::{Data, Dump, DumpEntry, Place};
pub use error::{Error, Failure, Problem};
pub use layout::Layout;
use mapped::Mapped;
pub use report::{Address, Finding, MarkerState, Report, Severity, FINDINGS_PER_RULE};
pub use write::Durability;

/// Options shared by every operation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Force this layout instead of detecting it.
    pub layout: Option<Layout>,
    /// Keep symbol names as they are in `.symtab` instead of demangling Rust and C++ names.
    pub no_demangle: bool,
    /// Skip the instruction-level rules (the `insn-*` rules of `check`), which decode the
    /// functions that contain entries: for tables with entries in most of the code, where decoding it
    /// all costs more than the rest of the check.
    pub no_instructions: bool,
    /// How durable an in-place sort is when it returns.
    pub durability: Durability,
}

/// What [`sort_file`] did.
#[derive(Debug)]
pub struct SortOutcome {
    /// The check that passed before sorting (warnings and notes may remain).
    pub report: Report,
    /// How many entries changed slots.
    pub moved: usize,
    /// The file written, or `None` when the file was already sorted and marked in place,
    /// or for a [`SortTo::DryRun`].
    pub written: Option<PathBuf>,
}

impl SortOutcome {
    /// One line: `FILE: LAYOUT table, N entries: sorted, M entries moved` and where the
    /// result went for a sort `to` (or `already sorted and marked, file unchanged`), with
    /// the number of warnings when there are any.
    pub fn summary(&self, to: SortTo<'_>) -> String {
        use report::count;
        let moved = count(self.moved, "entry", "entries");
        let what = match (&self.written, to) {
            (None, SortTo::DryRun) => format!("would be sorted, {moved} to move, nothing written"),
            (None, _) => "already sorted and marked, file unchanged".into(),
            (Some(_), SortTo::InPlace) => format!("sorted, {moved} moved, sorted in place"),
            (Some(p), _) => format!("sorted, {moved} moved, written to {}", p.display()),
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

/// Open, parse and analyse `path`, then run `f` on the analysis.
fn with_analysis<T>(
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
    let analysis = analyse(&image, opts).map_err(|p| p.in_file(path))?;
    let result = f(mapped, &analysis);
    // What was read is only the file if the file did not shrink meanwhile.
    mapped.verify_unchanged().map_err(|p| p.in_file(path))?;
    result
}

/// The analysis of `image` with the options that shape it (layout, names, rules).
fn analyse<'i, 'd>(image: &'i elf::Image<'d>, opts: &Options) -> Result<Analysis<'i, 'd>, Problem> {
    let mut analysis = Analysis::new(image, opts.layout)?;
    analysis.symbols.set_demangle(!opts.no_demangle);
    analysis.instructions = !opts.no_instructions;
    Ok(analysis)
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

/// Where [`sort_file_to`] writes the sorted file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SortTo<'p> {
    /// Patch the input in place: only the bytes that change are written, the marker last
    /// (and synced as [`Options::durability`] says). The inode and hard links stay.
    InPlace,
    /// Replace the input with a sorted copy, synced, then renamed over it.
    Replace,
    /// Write a sorted copy to this path (a new file renamed into place); the input stays.
    NewFile(&'p Path),
    /// Write nothing: check and plan the sort (every check and patch validation included)
    /// and report how many entries would move. A dry run of the build step.
    DryRun,
}

/// Check, then sort the table of `path` and clear its marker: in place, or into `output`
/// when given (see [`SortTo`]). Nothing is written unless every check passed.
pub fn sort_file(path: &Path, output: Option<&Path>, opts: &Options) -> Result<SortOutcome, Error> {
    sort_file_to(path, output.map_or(SortTo::InPlace, SortTo::NewFile), opts)
}

/// Check, then sort the table of `path` and clear its marker, writing as `to` says. Every
/// destination is checked (a regular file, or a link to one, and writable) and every patch
/// validated before anything is written. An input already sorted and
/// marked is not written unless `to` names a new file.
pub fn sort_file_to(path: &Path, to: SortTo<'_>, opts: &Options) -> Result<SortOutcome, Error> {
    let dest = match to {
        SortTo::NewFile(out) => write::destination(out).map_err(|p| p.in_file(out))?,
        SortTo::InPlace | SortTo::Replace => {
            write::destination(path).map_err(|p| p.in_file(path))?
        }
        SortTo::DryRun => path.to_path_buf(),
    };
    let mapped = match to {
        SortTo::InPlace => Mapped::open_for_update(path)?,
        SortTo::Replace | SortTo::NewFile(_) | SortTo::DryRun => Mapped::open(path)?,
    };
    let (report, plan) = analyse_mapped(&mapped, path, opts, |mapped, a| {
        let mut checked = check::check_with(a, &display(path), mapped, true);
        match sort::plan(a, &mut checked) {
            Ok(plan) => Ok((checked.report, plan)),
            Err(p) => {
                let mut e = p.in_file(path);
                e.report = Some(Box::new(checked.report));
                Err(e)
            }
        }
    })?;
    let outcome = |written| SortOutcome {
        report,
        moved: plan.moved,
        written,
    };
    match to {
        SortTo::DryRun => return Ok(outcome(None)),
        SortTo::InPlace | SortTo::Replace if plan.is_noop() => return Ok(outcome(None)),
        SortTo::InPlace => write::patch_in_place(mapped.file(), &plan, opts.durability),
        SortTo::Replace | SortTo::NewFile(_) => {
            write::write_patched(mapped.file(), mapped.len(), &dest, &plan.patches)
        }
    }
    .map_err(|p| p.in_file(&dest))?;
    Ok(outcome(Some(dest)))
}

/// List the table of `path`; `with_lines` adds DWARF `file:line`.
pub fn dump_file(path: &Path, opts: &Options, with_lines: bool) -> Result<Dump, Error> {
    with_analysis(path, opts, |_, a| {
        Ok(dump::dump(a, &display(path), with_lines))
    })
}

/// Check a file already in memory, as [`check_file`] checks a file.
pub fn check_bytes(data: &[u8], opts: &Options) -> Result<Report, Problem> {
    let image = elf::Image::parse(data).map_err(Problem::malformed)?;
    let analysis = analyse(&image, opts)?;
    Ok(check::check(&analysis, "<memory>").report)
}

/// List the table of a file already in memory, as [`dump_file`] lists a file.
pub fn dump_bytes(data: &[u8], opts: &Options, with_lines: bool) -> Result<Dump, Problem> {
    let image = elf::Image::parse(data).map_err(Problem::malformed)?;
    let analysis = analyse(&image, opts)?;
    Ok(dump::dump(&analysis, "<memory>", with_lines))
}

/// Analyse a file already in memory: parse, detect, check, dump (with DWARF lines) and plan
/// a sort without writing anything. For build scripts that hold the bytes, and for the
/// mutation and fuzz tests of the reader. Returns the check report.
pub fn inspect_bytes(data: &[u8], opts: &Options) -> Result<Report, Problem> {
    let image = elf::Image::parse(data).map_err(Problem::malformed)?;
    let analysis = analyse(&image, opts)?;
    let mut checked = check::check(&analysis, "<memory>");
    let _ = dump::dump(&analysis, "<memory>", true);
    let _ = sort::plan(&analysis, &mut checked)?;
    Ok(checked.report)
}

/// Sort a file already in memory: check, plan (validated as for a file) and apply the
/// patches to a copy of `data`. Returns the sorted bytes and the report of the check that
/// passed. The same plan as [`sort_file`] writes, for build scripts that hold the bytes and
/// for the fuzz target of planning and writing.
pub fn sort_bytes(data: &[u8], opts: &Options) -> Result<(Vec<u8>, Report), Problem> {
    let image = elf::Image::parse(data).map_err(Problem::malformed)?;
    let analysis = analyse(&image, opts)?;
    let mut checked = check::check(&analysis, "<memory>");
    let plan = sort::plan(&analysis, &mut checked)?;
    let mut sorted = data.to_vec();
    write::apply_patches(&mut sorted, &plan.patches)?;
    Ok((sorted, checked.report))
}
