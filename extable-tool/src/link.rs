//! The linker wrapper: run the real linker, then sort and check its output in place.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Problem};
use crate::{sort_file, Options, SortOutcome};

/// Environment variable naming the real linker when the tool is invoked *as* the linker.
pub const LINKER_ENV: &str = "EXTABLE_TOOL_LINKER";

/// Environment variable forcing a layout in linker mode (same names as `--layout`).
pub const LAYOUT_ENV: &str = "EXTABLE_TOOL_LAYOUT";

/// The real linker used when [`LINKER_ENV`] is unset: `rust-lld`, which rustc puts on the
/// linker's `PATH` (its sysroot's `lib/rustlib/<host>/bin`).
pub const DEFAULT_LINKER: &str = "rust-lld";

/// What a wrapped link did.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkOutcome {
    /// The real linker failed with this exit code (its messages went to stderr).
    LinkerFailed(i32),
    /// The real linker was killed by this signal.
    LinkerKilled(i32),
    /// No `-o` was given and the linker did not create or change its default output
    /// (`a.out`) in this run: a file left there by something else is not touched.
    DefaultOutputUnchanged(PathBuf),
    /// The output has no `__ex_table`: nothing to do.
    NoTable(PathBuf),
    /// The output was sorted and checked.
    Sorted(SortOutcome),
}

/// Run `linker args...`, then sort and check the output named by `-o` in place (or the
/// default `a.out`, if the linker wrote it in this run).
pub fn link(linker: &OsStr, args: &[OsString], opts: &Options) -> Result<LinkOutcome, Error> {
    let named = named_output(args);
    let output = named
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUTPUT));
    let before = file_state(&output);
    let run = Command::new(linker)
        .args(args)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            Problem::io_error("cannot run the linker", e).in_file(&PathBuf::from(linker))
        })?;
    forward_linker_messages(&run.stderr);
    let status = run.status;
    if let Some(signal) = status.signal() {
        return Ok(LinkOutcome::LinkerKilled(signal));
    }
    if !status.success() {
        return Ok(LinkOutcome::LinkerFailed(status.code().unwrap_or(1)));
    }
    if named.is_none() {
        let after = file_state(&output);
        if after.is_none() || after == before {
            return Ok(LinkOutcome::DefaultOutputUnchanged(output));
        }
    }
    let has_table = crate::Mapped::open(&output)
        .ok()
        .and_then(|m| {
            let image = crate::elf::Image::parse(m.bytes()).ok()?;
            // A table merged into another section still defines the start symbol: sort_file
            // refuses it, saying what the linker script lacks.
            let found = image
                .sections_named(extable_runtime::entry::SECTION)
                .next()
                .is_some()
                || crate::analysis::table_start_section(&image).is_some();
            Some(found)
        })
        .unwrap_or(true); // unreadable or malformed: let sort report it
    if !has_table {
        return Ok(LinkOutcome::NoTable(output));
    }
    sort_file(&output, None, opts).map(LinkOutcome::Sorted)
}

/// Copy the real linker's messages to stderr, adding what to do when they say that the table's
/// start or stop symbol is undefined (the linker script has no `__ex_table` output section).
fn forward_linker_messages(stderr: &[u8]) {
    let mut out = std::io::stderr().lock();
    let _ = out.write_all(stderr);
    if let Some(hint) = missing_table_hint(stderr) {
        let _ = writeln!(out, "{hint}");
    }
}

/// The hint for linker messages about undefined table bounds, if they contain any.
fn missing_table_hint(stderr: &[u8]) -> Option<String> {
    use extable_runtime::entry::{START_SYMBOL, STOP_SYMBOL};
    let text = String::from_utf8_lossy(stderr);
    // lld: "undefined symbol: SYM"; GNU ld: "undefined reference to `SYM'".
    let undefined = |sym: &str| {
        text.lines()
            .any(|l| l.contains("undefined") && l.contains(sym))
    };
    (undefined(START_SYMBOL) || undefined(STOP_SYMBOL)).then(|| {
        format!(
            "extable-tool: {START_SYMBOL}/{STOP_SYMBOL} are undefined because no output \
             section is named {}: {}",
            extable_runtime::entry::SECTION,
            crate::analysis::TABLE_SECTION_FIX
        )
    })
}

/// The output of a link without `-o`.
pub const DEFAULT_OUTPUT: &str = "a.out";

/// What tells whether a file was created or written: its identity, size, and times.
fn file_state(path: &Path) -> Option<(u64, u64, u64, i64, i64, i64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// The output file of a GNU-style link (`-o F`, `-oF`, `--output F`, `--output=F`, also
/// inside `@response` files); `a.out` when none is given.
pub fn output_path(args: &[OsString]) -> PathBuf {
    named_output(args).unwrap_or_else(|| PathBuf::from(DEFAULT_OUTPUT))
}

/// The output file named by the arguments of a GNU-style link, if any.
fn named_output(args: &[OsString]) -> Option<PathBuf> {
    let args = expand_response_files(args);
    let mut out = None;
    let mut it = args.iter().map(|a| a.as_bytes());
    while let Some(a) = it.next() {
        if a == b"-o" || a == b"--output" || a == b"-output" {
            out = it.next().map(|v| v.to_vec());
        } else if let Some(v) = a.strip_prefix(b"--output=") {
            out = Some(v.to_vec());
        } else if let Some(v) = a
            .strip_prefix(b"-o")
            .filter(|v| !v.is_empty() && !a.starts_with(b"-o-"))
        {
            out = Some(v.to_vec());
        }
    }
    out.map(|o| PathBuf::from(OsString::from_vec(o)))
}

/// Replace `@file` arguments with the arguments the file holds.
fn expand_response_files(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::new();
    for a in args {
        let bytes = a.as_bytes();
        match bytes
            .strip_prefix(b"@")
            .and_then(|p| std::fs::read(OsStr::from_bytes(p)).ok())
        {
            Some(text) => out.extend(split_response(&text).into_iter().map(OsString::from_vec)),
            None => out.push(a.clone()),
        }
    }
    out
}

/// Split a GNU response file: whitespace separates, quotes group, backslash escapes.
fn split_response(text: &[u8]) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    let mut quote = None;
    let mut it = text.iter().copied();
    while let Some(c) = it.next() {
        match (c, quote) {
            (b'\\', _) => {
                if let Some(n) = it.next() {
                    cur.get_or_insert_with(Vec::new).push(n);
                }
            }
            (q @ (b'"' | b'\''), None) => {
                quote = Some(q);
                cur.get_or_insert_with(Vec::new);
            }
            (q, Some(open)) if q == open => quote = None,
            (c, None) if c.is_ascii_whitespace() => args.extend(cur.take()),
            (c, _) => cur.get_or_insert_with(Vec::new).push(c),
        }
    }
    args.extend(cur);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn finds_the_output_in_every_spelling() {
        assert_eq!(
            output_path(&os(&["-flavor", "gnu", "a.o", "-o", "k.elf"])),
            PathBuf::from("k.elf")
        );
        assert_eq!(output_path(&os(&["-ok.elf"])), PathBuf::from("k.elf"));
        assert_eq!(output_path(&os(&["--output=x/y"])), PathBuf::from("x/y"));
        assert_eq!(output_path(&os(&["--output", "z"])), PathBuf::from("z"));
        assert_eq!(output_path(&os(&["a.o"])), PathBuf::from("a.out"));
    }

    #[test]
    fn undefined_table_bounds_get_a_hint() {
        let lld = b"rust-lld: error: undefined symbol: __stop___ex_table\n>>> referenced by x.o\n";
        let hint = missing_table_hint(lld).expect("a hint");
        assert!(hint.contains("KEEP(*(__ex_table))"), "{hint}");
        let ld = b"k.c:(.text+0x5): undefined reference to `__start___ex_table'\n";
        assert!(missing_table_hint(ld).is_some());
        assert!(missing_table_hint(b"rust-lld: error: undefined symbol: memcpy\n").is_none());
    }

    #[test]
    fn response_files_are_split_like_gnu_ld() {
        let got = split_response(b"a.o \"with space.o\"\n-o\nout\\ dir/k\n'q'");
        let want: Vec<Vec<u8>> = ["a.o", "with space.o", "-o", "out dir/k", "q"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(got, want);
    }
}
