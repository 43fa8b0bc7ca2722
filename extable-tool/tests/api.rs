//! The library API as a build script or xtask uses it: I/O errors keep the operating
//! system's error as their source, a dry-run sort writes nothing, and the in-memory
//! operations agree with the file operations.

mod common;

use std::error::Error as _;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, ErrorKind};

use common::synth::*;
use common::*;
use extable_tool::{Failure, Layout, Options, SortTo};

/// The kind of the I/O error behind `e`, found as a caller would: through `source()`.
fn io_kind(e: &extable_tool::Error) -> Option<ErrorKind> {
    let source = e.source()?;
    Some(source.downcast_ref::<io::Error>()?.kind())
}

fn shuffled_file() -> Vec<u8> {
    let specs = sorted_specs(Layout::Extable, 50);
    Program::new(Layout::Extable, true, false, shuffled(&specs, 5)).build()
}

#[test]
fn a_missing_file_is_an_io_error_with_the_os_error_as_source() {
    let dir = tempdir();
    let missing = dir.path().join("no-such-kernel");
    let opts = Options::default();
    let errors = [
        extable_tool::check_file(&missing, &opts).unwrap_err(),
        extable_tool::dump_file(&missing, &opts, false).unwrap_err(),
        extable_tool::sort_file_to(&missing, SortTo::DryRun, &opts).unwrap_err(),
        extable_tool::sort_file_to(&missing, SortTo::InPlace, &opts).unwrap_err(),
    ];
    for e in &errors {
        assert_eq!(e.failure, Failure::Io, "{e}");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(io_kind(e), Some(ErrorKind::NotFound), "{e}");
        assert!(e.to_string().starts_with(&missing.display().to_string()));
    }
}

#[test]
fn a_linker_that_cannot_run_is_an_io_error_with_the_os_error_as_source() {
    let args: Vec<OsString> = vec!["-o".into(), "out".into()];
    let linker = OsStr::new("/no/such/linker");
    let e = extable_tool::link::link(linker, &args, &Options::default()).unwrap_err();
    assert_eq!(e.failure, Failure::Io);
    assert_eq!(io_kind(&e), Some(ErrorKind::NotFound), "{e}");
}

#[test]
fn refusals_and_malformed_files_have_no_io_source() {
    let dir = tempdir();
    let garbage = write(dir.path(), "garbage", b"not an ELF file");
    let e = extable_tool::check_file(&garbage, &Options::default()).unwrap_err();
    assert_eq!(e.failure, Failure::Malformed);
    assert!(e.source().is_none());
}

#[test]
fn a_dry_run_sort_plans_the_same_moves_and_writes_nothing() {
    let dir = tempdir();
    let input = shuffled_file();
    let path = write(dir.path(), "kernel", &input);
    let opts = Options::default();
    let dry = extable_tool::sort_file_to(&path, SortTo::DryRun, &opts).unwrap();
    assert!(dry.written.is_none());
    assert!(dry.moved > 0);
    assert!(
        fs::read(&path).unwrap() == input,
        "a dry run wrote the file"
    );
    assert!(dry.summary(SortTo::DryRun).contains("nothing written"));
    let real = extable_tool::sort_file_to(&path, SortTo::InPlace, &opts).unwrap();
    assert_eq!(real.moved, dry.moved);
    assert!(fs::read(&path).unwrap() != input);
}

#[test]
fn in_memory_operations_agree_with_the_file_operations() {
    let dir = tempdir();
    let input = shuffled_file();
    let path = write(dir.path(), "kernel", &input);
    let opts = Options::default();
    let from_file = extable_tool::check_file(&path, &opts).unwrap();
    let in_memory = extable_tool::check_bytes(&input, &opts).unwrap();
    assert_eq!(from_file.lines().len(), in_memory.lines().len());
    assert!(!in_memory.sorted);
    assert_eq!(
        extable_tool::dump_file(&path, &opts, true).unwrap().entries,
        extable_tool::dump_bytes(&input, &opts, true)
            .unwrap()
            .entries
    );
    let (sorted, report) = extable_tool::sort_bytes(&input, &opts).unwrap();
    assert!(!report.has_errors());
    extable_tool::sort_file(&path, None, &opts).unwrap();
    assert!(fs::read(&path).unwrap() == sorted);
    assert!(extable_tool::check_bytes(&sorted, &opts).unwrap().sorted);
}
