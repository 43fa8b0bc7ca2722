//! The `extable-tool` command line: `sort`, `check`, `dump`, `link`, and linker mode.

#[macro_use]
mod console;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use extable_tool::link::{self, LinkOutcome};
use extable_tool::{Error, Layout, Options, SortTo};

/// Sort, check and dump exception tables (`__ex_table`) in ELF files.
///
/// Exit codes: 0 done or clean, 1 refused or errors found, 2 a file could not be read,
/// parsed or written (or the output could not be written); 128+N when the linker was killed
/// by signal N. Invoked with a first argument that is not a subcommand, the tool acts
/// as a linker: it runs $EXTABLE_TOOL_LINKER (default rust-lld) with the same arguments and
/// then sorts and checks the output in place.
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
    /// Table layout instead of detecting it: extable, linux-x86, linux-x86-4.6, linux-arm64,
    /// linux-riscv, linux-s390, linux-loongarch, linux-powerpc, absolute.
    #[arg(long, value_parser = parse_layout)]
    layout: Option<Layout>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check, sort __ex_table in place and clear the sort marker.
    ///
    /// In place, only the bytes that change are written, the marker last: a crash leaves the
    /// marker saying "sort needed". --atomic replaces the file with a sorted copy instead.
    Sort {
        #[command(flatten)]
        common: Common,
        /// Write the result to this new file instead of in place (one input only).
        #[arg(short, long, conflicts_with = "atomic")]
        output: Option<PathBuf>,
        /// Replace each file with a sorted copy (written, synced, renamed over it) instead
        /// of patching it in place: all or nothing, at the cost of copying the file.
        #[arg(long)]
        atomic: bool,
        /// ELF files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate tables and print findings.
    Check {
        #[command(flatten)]
        common: Common,
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
        /// ELF file.
        file: PathBuf,
    },
    /// Run LINKER ARGS..., then sort and check its output (-o) in place.
    Link {
        /// Table layout instead of detecting it.
        #[arg(long, value_parser = parse_layout)]
        layout: Option<Layout>,
        /// The real linker, then its arguments.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

fn parse_layout(s: &str) -> Result<Layout, String> {
    s.parse()
}

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

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let first = args.get(1).and_then(|a| a.to_str());
    if args.len() > 1 && !first.is_some_and(|a| SUBCOMMANDS.contains(&a)) {
        return exit(linker_mode(&args[1..]));
    }
    let cli = Cli::parse_from(args);
    exit(match cli.command {
        Command::Sort {
            common,
            output,
            atomic,
            files,
        } => {
            let to = match (&output, atomic) {
                (Some(out), _) => SortTo::NewFile(out),
                (None, true) => SortTo::Replace,
                (None, false) => SortTo::InPlace,
            };
            sort(&common, to, &files)
        }
        Command::Check { common, files } => check(&common, &files),
        Command::Dump {
            common,
            no_lines,
            file,
        } => dump(&common, !no_lines, &file),
        Command::Link { layout, command } => {
            run_link(&command[0], &command[1..], Options { layout })
        }
    })
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(console::exit_status(code).clamp(0, 255) as u8)
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
    run_link(&linker, args, Options { layout })
}

fn run_link(linker: &std::ffi::OsStr, args: &[OsString], opts: Options) -> i32 {
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
            print_findings_text(&outcome.report.lines(), true);
            0
        }
        Err(e) => report_error(&e, Format::Text),
    }
}

/// Print warnings and notes of a passing check to stderr (errors refuse earlier).
fn print_findings_text(lines: &[String], to_stderr: bool) {
    for l in lines {
        if to_stderr {
            eprintln!("{l}");
        } else {
            println!("{l}");
        }
    }
}

fn report_error(e: &Error, format: Format) -> i32 {
    if let Some(report) = &e.report {
        match format {
            Format::Text => print_findings_text(&report.lines(), true),
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(report).unwrap_or_default()
            ),
        }
    }
    eprintln!("{e}");
    e.exit_code()
}

fn sort(common: &Common, to: SortTo<'_>, files: &[PathBuf]) -> i32 {
    if matches!(to, SortTo::NewFile(_)) && files.len() != 1 {
        eprintln!("extable-tool: -o needs exactly one input file");
        return 2;
    }
    let opts = Options {
        layout: common.layout,
    };
    let mut worst = 0;
    let mut json = Vec::new();
    for f in files {
        match extable_tool::sort_file_to(f, to, &opts) {
            Ok(outcome) => match common.format {
                Format::Text => {
                    print_findings_text(&outcome.report.lines(), true);
                    let moved = outcome.moved;
                    let what = match (&outcome.written, to) {
                        (None, _) => "already sorted and marked, file unchanged".into(),
                        (Some(_), SortTo::InPlace) => {
                            format!("sorted in place, {moved} entries moved")
                        }
                        (Some(p), _) => {
                            format!("sorted, {moved} entries moved, written to {}", p.display())
                        }
                    };
                    println!(
                        "{}: {} {} entries: {what}",
                        f.display(),
                        outcome.report.layout,
                        outcome.report.entries
                    );
                }
                Format::Json => json.push(serde_json::json!({
                    "file": f.display().to_string(),
                    "status": "sorted",
                    "moved": outcome.moved,
                    "written": outcome.written.map(|p| p.display().to_string()),
                    "report": outcome.report,
                })),
            },
            Err(e) => {
                worst = worst.max(e.exit_code());
                match common.format {
                    Format::Text => {
                        report_error(&e, Format::Text);
                    }
                    Format::Json => json.push(error_json(&e)),
                }
            }
        }
    }
    if common.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    worst
}

fn error_json(e: &Error) -> serde_json::Value {
    serde_json::json!({
        "file": e.file.display().to_string(),
        "status": if e.exit_code() == 1 { "refused" } else { "unreadable" },
        "error": e.message,
        "report": e.report,
    })
}

fn check(common: &Common, files: &[PathBuf]) -> i32 {
    let opts = Options {
        layout: common.layout,
    };
    let mut worst = 0;
    let mut json = Vec::new();
    for f in files {
        match extable_tool::check_file(f, &opts) {
            Ok(report) => {
                if report.has_errors() {
                    worst = worst.max(1);
                }
                match common.format {
                    Format::Text => {
                        print_findings_text(&report.lines(), false);
                        println!("{}", report.summary());
                    }
                    Format::Json => json.push(serde_json::json!({
                        "file": f.display().to_string(),
                        "status": if report.has_errors() { "errors" } else { "clean" },
                        "report": report,
                    })),
                }
            }
            Err(e) => {
                worst = worst.max(e.exit_code());
                match common.format {
                    Format::Text => {
                        eprintln!("{e}");
                    }
                    Format::Json => json.push(error_json(&e)),
                }
            }
        }
    }
    if common.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    worst
}

fn dump(common: &Common, lines: bool, file: &std::path::Path) -> i32 {
    let opts = Options {
        layout: common.layout,
    };
    match extable_tool::dump_file(file, &opts, lines) {
        Ok(d) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            use std::io::Write;
            let r = match common.format {
                Format::Text => d.lines().iter().try_for_each(|l| writeln!(out, "{l}")),
                Format::Json => serde_json::to_writer_pretty(&mut out, &d)
                    .map_err(std::io::Error::other)
                    .and_then(|_| writeln!(out)),
            };
            if let Err(e) = r.and_then(|_| out.flush()) {
                console::failed(console::Stream::Stdout, &e);
            }
            0
        }
        Err(e) => {
            match common.format {
                Format::Text => eprintln!("{e}"),
                Format::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&error_json(&e)).unwrap_or_default()
                    );
                    eprintln!("{e}");
                }
            }
            e.exit_code()
        }
    }
}
