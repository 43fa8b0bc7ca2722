//! The `extable-tool` command line: `sort`, `check`, `dump`, `link`, and linker mode.

// The C runtime calls `main` below directly: see there.
#![cfg_attr(not(test), no_main)]

#[macro_use]
mod console;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use extable_tool::json::{Document, FileResult, Status};
use extable_tool::link::{self, LinkOutcome};
use extable_tool::{Durability, Error, Layout, Options, Severity, SortTo};

/// Sort, check and dump exception tables (`__ex_table`) in ELF files.
///
/// Exit codes: 0 done or clean, 1 refused or errors found (or warnings, with
/// --deny-warnings), 2 a file could not be read, parsed or written, the output could not
/// be written, or bad usage; 128+N when the linker was killed by signal N.
///
/// Linker mode: invoked as `extable-ld` (a symlink or copy of this program), or with
/// arguments that can only be a link (`-flavor ...` first, as rustc passes to rust-lld, a
/// `@response` file first, or `-o OUT` with object files), the tool runs
/// $EXTABLE_TOOL_LINKER (default rust-lld) with the same arguments and then sorts and
/// checks the output in place.
#[derive(Parser, Debug)]
#[command(name = "extable-tool", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
struct Common {
    /// Table layout instead of detecting it: extable, linux-x86, linux-x86-4.6,
    /// linux-x86-3.5, linux-arm64, linux-arm64-4.6, linux-riscv, linux-s390, linux-s390-5.5,
    /// linux-s390-pair, linux-loongarch, linux-powerpc, absolute.
    #[arg(long, value_parser = parse_layout)]
    layout: Option<Layout>,
    /// Output format (JSON: one versioned document, schema "extable-tool/1").
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Print symbol names as they are in .symtab (default: demangle Rust and C++ names).
    #[arg(long)]
    no_demangle: bool,
}

/// Options of the commands that check.
#[derive(clap::Args, Debug)]
struct Rules {
    /// Skip the instruction-level rules (alignment, instruction starts, memory access),
    /// which decode the functions that contain entries.
    #[arg(long)]
    no_instructions: bool,
}

impl Common {
    fn options(&self) -> Options {
        Options {
            layout: self.layout,
            no_demangle: self.no_demangle,
            no_instructions: false,
            ..Options::default()
        }
    }

    fn checking(&self, rules: &Rules) -> Options {
        Options {
            no_instructions: rules.no_instructions,
            ..self.options()
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check, sort __ex_table in place and clear the sort marker.
    ///
    /// In place, only the bytes that change are written, the marker last: a process killed
    /// meanwhile leaves the marker saying "sort needed"; --sync makes that hold for a power
    /// loss too. --atomic replaces the file with a sorted copy instead.
    Sort {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        rules: Rules,
        /// Write the result to this new file instead of in place (one input only).
        #[arg(short, long, conflicts_with = "atomic")]
        output: Option<PathBuf>,
        /// Replace each file with a sorted copy (written, synced, renamed over it) instead
        /// of patching it in place: all or nothing, at the cost of copying the file.
        #[arg(long)]
        atomic: bool,
        /// In place: `fdatasync` the table before the marker is written, and the marker
        /// after (like `dd conv=fsync`), so that a power loss too leaves the marker saying
        /// "sort needed" until the sorted table is on the disk.
        #[arg(long, conflicts_with_all = ["atomic", "output"])]
        sync: bool,
        /// Also print notes (by default: one summary line per file, plus warnings).
        #[arg(short, long)]
        verbose: bool,
        /// ELF files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate tables and print findings.
    Check {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        rules: Rules,
        /// Exit 1 when a file has warnings (as for errors).
        #[arg(long)]
        deny_warnings: bool,
        /// `-D warnings`: the same as --deny-warnings.
        #[arg(short = 'D', value_name = "LINT", value_parser = ["warnings"])]
        deny: Vec<String>,
        /// ELF files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the entries with symbol+offset and DWARF file:line.
    Dump {
        #[command(flatten)]
        common: Common,
        /// Do not look up DWARF line information.
        #[arg(long)]
        no_lines: bool,
        /// ELF files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run LINKER ARGS..., then sort and check its output (-o) in place.
    Link {
        /// Table layout instead of detecting it.
        #[arg(long, value_parser = parse_layout)]
        layout: Option<Layout>,
        /// Also print notes.
        #[arg(short, long)]
        verbose: bool,
        /// The real linker, then its arguments.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

fn parse_layout(s: &str) -> Result<Layout, String> {
    s.parse()
}

/// The program names that mean "act as the linker".
const LINKER_NAMES: &[&str] = &["extable-ld"];

/// First arguments that are the command line's own, never a link's.
const SUBCOMMANDS: &[&str] = &[
    "sort",
    "check",
    "dump",
    "link",
    "help",
    "-h",
    "--help",
    "-V",
    "--version",
];

/// Inputs a link takes that no subcommand does.
const OBJECT_SUFFIXES: &[&str] = &[".o", ".obj", ".a", ".rlib", ".so", ".lo"];

/// Whether the tool was invoked as a linker: by one of [`LINKER_NAMES`], or with arguments
/// that only a link has (`-flavor` or a `@response` file first, or an output option with
/// object files) and no
/// subcommand first. A mistyped subcommand is neither, and gets clap's "unrecognized
/// subcommand" with a suggestion.
fn invoked_as_linker(args: &[OsString]) -> bool {
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_stem())
        .and_then(OsStr::to_str)
        .unwrap_or("");
    if LINKER_NAMES.contains(&name) {
        return true;
    }
    let rest = &args[args.len().min(1)..];
    let first = rest.first().and_then(|a| a.to_str());
    if first.is_some_and(|a| SUBCOMMANDS.contains(&a)) {
        return false;
    }
    // rustc passes long command lines in a response file: `LINKER @FILE`.
    if first == Some("-flavor") || first.is_some_and(|a| a.starts_with('@')) {
        return true;
    }
    let has_output = rest.iter().any(|a| {
        let a = a.as_encoded_bytes();
        a.starts_with(b"-o") || a.starts_with(b"--output")
    });
    let has_object = rest.iter().any(|a| {
        let a = a.to_string_lossy();
        a.starts_with('@') || OBJECT_SUFFIXES.iter().any(|s| a.ends_with(s))
    });
    has_output && has_object
}

/// The invocation a build runs on every link, `sort FILE...` or `check FILE...` with no
/// option, as clap would parse it, without building clap's parser (which takes longer than
/// sorting a small kernel's table). `None` for anything else, which clap parses.
fn plain_invocation(args: &[OsString]) -> Option<Cli> {
    let (command, files) = args.get(1..)?.split_first()?;
    if files.is_empty() || files.iter().any(|f| f.as_encoded_bytes().starts_with(b"-")) {
        return None;
    }
    let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    let common = Common {
        layout: None,
        format: Format::Text,
        no_demangle: false,
    };
    let rules = Rules {
        no_instructions: false,
    };
    let command = match command.to_str()? {
        "sort" => Command::Sort {
            common,
            rules,
            output: None,
            atomic: false,
            sync: false,
            verbose: false,
            files,
        },
        "check" => Command::Check {
            common,
            rules,
            deny_warnings: false,
            deny: Vec::new(),
            files,
        },
        _ => return None,
    };
    Some(Cli { command })
}

/// The program's entry, called by the C runtime. Rust's own start-up adds a stack
/// overflow handler with its alternate stack and a read of /proc/self/maps, which together
/// cost more than checking a small kernel's table; the tool needs only the rest, done
/// here: the arguments, the standard streams open (else a file this tool opens could take
/// their number and receive its output), and `SIGPIPE` ignored (a closed pipe is then an
/// error the console handles).
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    open_standard_streams();
    // SAFETY: setting a signal's disposition to "ignore" involves no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // SAFETY: the C runtime passes `argc` NUL-terminated strings in `argv`, alive for the
    // whole run.
    let args = unsafe { arguments(argc, argv) };
    // A panic (a bug) ends the program as under Rust's own start-up: its message printed
    // by the panic hook, exit status 101.
    std::panic::catch_unwind(|| run(args)).unwrap_or(101)
}

/// The program's arguments from C's `main`: `std::env::args` is filled only by some C
/// libraries' start-up (glibc's, not musl's) when Rust's own start-up does not run.
///
/// # Safety
///
/// `argv` points to `argc` pointers to NUL-terminated strings that outlive the call.
#[cfg(not(test))]
unsafe fn arguments(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: `i < argc`, and each of the first `argc` entries is a valid C string
            // (the function's contract).
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect()
}

/// Open /dev/null on any of descriptors 0, 1 and 2 that is closed, as Rust's start-up does.
#[cfg(not(test))]
fn open_standard_streams() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a live array of three pollfd; a zero timeout does not block.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: a NUL-terminated path; the lowest free descriptor is the closed one, and
        // the descriptors below it are open.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd != p.fd {
            // Nothing safe to do without the standard streams.
            std::process::abort();
        }
    }
}

#[cfg_attr(test, allow(dead_code))]
fn run(args: Vec<OsString>) -> i32 {
    if invoked_as_linker(&args) {
        return exit(linker_mode(&args[1..]));
    }
    let cli = plain_invocation(&args).unwrap_or_else(|| Cli::parse_from(args));
    exit(match cli.command {
        Command::Sort {
            common,
            rules,
            output,
            atomic,
            sync,
            verbose,
            files,
        } => {
            let to = match (&output, atomic) {
                (Some(out), _) => SortTo::NewFile(out),
                (None, true) => SortTo::Replace,
                (None, false) => SortTo::InPlace,
            };
            let opts = Options {
                durability: match sync {
                    true => Durability::Sync,
                    false => Durability::PageCache,
                },
                ..common.checking(&rules)
            };
            sort(common.format, &opts, to, verbose, &files)
        }
        Command::Check {
            common,
            rules,
            deny_warnings,
            deny,
            files,
        } => check(
            common.format,
            &common.checking(&rules),
            deny_warnings || !deny.is_empty(),
            &files,
        ),
        Command::Dump {
            common,
            no_lines,
            files,
        } => dump(&common, !no_lines, &files),
        Command::Link {
            layout,
            verbose,
            command,
        } => run_link(
            &command[0],
            &command[1..],
            Options {
                layout,
                ..Options::default()
            },
            verbose,
        ),
    })
}

fn exit(code: i32) -> i32 {
    console::exit_status(code).clamp(0, 255)
}

fn linker_mode(args: &[OsString]) -> i32 {
    let linker = std::env::var_os(link::LINKER_ENV).unwrap_or_else(|| link::DEFAULT_LINKER.into());
    let layout = match std::env::var(link::LAYOUT_ENV) {
        Ok(name) => match name.parse() {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("extable-tool: {}: {e}", link::LAYOUT_ENV);
                return 2;
            }
        },
        Err(_) => None,
    };
    let opts = Options {
        layout,
        ..Options::default()
    };
    run_link(&linker, args, opts, false)
}

/// The findings a build step shows: warnings and errors, notes too when `verbose`.
fn shown(verbose: bool) -> Severity {
    if verbose {
        Severity::Note
    } else {
        Severity::Warning
    }
}

fn run_link(linker: &OsStr, args: &[OsString], opts: Options, verbose: bool) -> i32 {
    match link::link(linker, args, &opts) {
        Ok(LinkOutcome::LinkerFailed(code)) => code,
        Ok(LinkOutcome::LinkerKilled(signal)) => {
            eprintln!(
                "extable-tool: {} killed by signal {signal}",
                linker.to_string_lossy()
            );
            128 + signal
        }
        Ok(LinkOutcome::DefaultOutputUnchanged(output)) => {
            eprintln!(
                "extable-tool: no -o given and the linker did not write {} in this run: nothing sorted",
                output.display()
            );
            0
        }
        Ok(LinkOutcome::NoTable(_)) => 0,
        Ok(LinkOutcome::Sorted(outcome)) => {
            print_lines(&outcome.report.lines_at_least(shown(verbose)), true);
            eprintln!("extable-tool: {}", outcome.summary(SortTo::InPlace));
            0
        }
        Ok(_) => 0,
        Err(e) => report_error_text(&e, verbose),
    }
}

fn print_lines(lines: &[String], to_stderr: bool) {
    for l in lines {
        if to_stderr {
            eprintln!("{l}");
        } else {
            println!("{l}");
        }
    }
}

/// The findings of a refused sort (errors and warnings, notes when `verbose`), then the
/// error line, on stderr.
fn report_error_text(e: &Error, verbose: bool) -> i32 {
    if let Some(report) = &e.report {
        print_lines(&report.lines_at_least(shown(verbose)), true);
    }
    eprintln!("{e}");
    e.exit_code()
}

/// Print `doc` on stdout.
fn print_json(doc: &Document) {
    println!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
}

fn sort(format: Format, opts: &Options, to: SortTo<'_>, verbose: bool, files: &[PathBuf]) -> i32 {
    if matches!(to, SortTo::NewFile(_)) && files.len() != 1 {
        eprintln!("extable-tool: -o needs exactly one input file");
        return 2;
    }
    let mut worst = 0;
    let mut doc = Document::new("sort");
    for f in files {
        match extable_tool::sort_file_to(f, to, opts) {
            Ok(outcome) => match format {
                Format::Text => {
                    print_lines(&outcome.report.lines_at_least(shown(verbose)), true);
                    println!("{}", outcome.summary(to));
                }
                Format::Json => {
                    let status = match outcome.written {
                        Some(_) => Status::Sorted,
                        None => Status::Unchanged,
                    };
                    doc.files.push(FileResult {
                        moved: Some(outcome.moved),
                        written: outcome.written.map(|p| p.display().to_string()),
                        report: Some(outcome.report),
                        ..FileResult::new(f, status)
                    });
                }
            },
            Err(e) => {
                worst = worst.max(e.exit_code());
                match format {
                    Format::Text => {
                        report_error_text(&e, verbose);
                    }
                    Format::Json => doc.files.push(FileResult::failed(f, &e)),
                }
            }
        }
    }
    if format == Format::Json {
        print_json(&doc);
    }
    worst
}

fn check(format: Format, opts: &Options, deny_warnings: bool, files: &[PathBuf]) -> i32 {
    let mut worst = 0;
    let mut doc = Document::new("check");
    for f in files {
        match extable_tool::check_file(f, opts) {
            Ok(report) => {
                if report.has_errors() || (deny_warnings && report.has_warnings()) {
                    worst = worst.max(1);
                }
                match format {
                    Format::Text => {
                        print_lines(&report.lines(), false);
                        println!("{}", report.summary());
                    }
                    Format::Json => doc.files.push(FileResult {
                        report: Some(report.clone()),
                        ..FileResult::new(f, Status::of_check(&report))
                    }),
                }
            }
            Err(e) => {
                worst = worst.max(e.exit_code());
                match format {
                    Format::Text => eprintln!("{e}"),
                    Format::Json => doc.files.push(FileResult::failed(f, &e)),
                }
            }
        }
    }
    if format == Format::Json {
        print_json(&doc);
    }
    worst
}

fn dump(common: &Common, lines: bool, files: &[PathBuf]) -> i32 {
    let opts = common.options();
    let mut worst = 0;
    let mut doc = Document::new("dump");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for f in files {
        match extable_tool::dump_file(f, &opts, lines) {
            Ok(d) => match common.format {
                Format::Text => {
                    let r = d.lines().iter().try_for_each(|l| writeln!(out, "{l}"));
                    if let Err(e) = r {
                        console::failed(console::Stream::Stdout, &e);
                        return worst;
                    }
                }
                Format::Json => doc.files.push(FileResult {
                    dump: Some(d),
                    ..FileResult::new(f, Status::Listed)
                }),
            },
            Err(e) => {
                worst = worst.max(e.exit_code());
                match common.format {
                    Format::Text => {
                        // Keep the order of the listing and the message.
                        let _ = out.flush();
                        eprintln!("{e}");
                    }
                    Format::Json => doc.files.push(FileResult::failed(f, &e)),
                }
            }
        }
    }
    let r = match common.format {
        Format::Text => Ok(()),
        Format::Json => serde_json::to_writer_pretty(&mut out, &doc)
            .map_err(|e| match e.io_error_kind() {
                Some(kind) => std::io::Error::from(kind),
                None => std::io::Error::other(e),
            })
            .and_then(|_| writeln!(out)),
    };
    if let Err(e) = r.and_then(|_| out.flush()) {
        console::failed(console::Stream::Stdout, &e);
    }
    worst
}

#[cfg(test)]
mod plain_invocation_tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// Plain `sort`/`check` invocations read as clap reads them; anything else is left to
    /// clap.
    #[test]
    fn plain_invocations_parse_as_clap_parses_them() {
        for args in [
            &["extable-tool", "sort", "vmlinux"][..],
            &["extable-tool", "sort", "a", "b/c", "help"],
            &["extable-tool", "check", "vmlinux"],
            &["extable-tool", "check", "a", "b"],
        ] {
            let plain = plain_invocation(&argv(args)).expect("a plain invocation");
            let clap = Cli::try_parse_from(argv(args)).unwrap();
            assert_eq!(format!("{plain:?}"), format!("{clap:?}"), "{args:?}");
        }
        for args in [
            &["extable-tool"][..],
            &["extable-tool", "sort"],
            &["extable-tool", "check", "--layout", "extable", "f"],
            &["extable-tool", "check", "f", "--deny-warnings"],
            &["extable-tool", "sort", "f", "-o", "g"],
            &["extable-tool", "sort", "--", "-f"],
            &["extable-tool", "dump", "f"],
            &["extable-tool", "link", "ld"],
            &["extable-tool", "--version"],
        ] {
            assert!(plain_invocation(&argv(args)).is_none(), "{args:?}");
        }
    }
}
