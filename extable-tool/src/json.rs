//! The JSON output of `check`, `sort` and `dump` (`--format json`): one versioned schema.
//!
//! Every command prints one object, for one file or many:
//!
//! ```json
//! { "schema": "extable-tool/1", "command": "check", "files": [ { ... }, ... ] }
//! ```
//!
//! Each element of `files` has the same keys whatever the command; those that do not apply
//! are `null`:
//!
//! | key       | type             | what                                                        |
//! |-----------|------------------|-------------------------------------------------------------|
//! | `file`    | string           | the path as given                                           |
//! | `status`  | string           | one of [`Status`], below                                    |
//! | `error`   | string or null   | the one-line reason when `status` is `refused`/`unreadable` |
//! | `report`  | object or null   | [`Report`]: the check (`check`, `sort`, a refused `sort`)   |
//! | `moved`   | number or null   | `sort`: entries that changed slots                          |
//! | `written` | string or null   | `sort`: the file written (`null` when unchanged)            |
//! | `dump`    | object or null   | `dump`: [`Dump`], the entries                               |
//!
//! The same schema, as a JSON Schema (draft 2020-12) that the tests validate every
//! command's output against, is `schema/extable-tool-1.schema.json` in this crate.
//!
//! Addresses are strings `"0x…"` (lower-case hex): most JSON readers hold numbers as
//! doubles and would round 64-bit addresses. Counts, indices, marker values and data words
//! are numbers (all below 2^53). A change that removes or retypes a key bumps the version
//! in `schema`; new keys may appear within a version.

use serde::Serialize;

use crate::dump::Dump;
use crate::report::Report;

/// The schema name and version in every document.
pub const SCHEMA: &str = "extable-tool/1";

/// The outcome of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// `check`: no error and no warning.
    Clean,
    /// `check`: warnings but no error.
    Warnings,
    /// `check`: at least one error.
    Errors,
    /// `sort`: the table was sorted (or the marker cleared) and the file written.
    Sorted,
    /// `sort`: already sorted and marked; the file was left alone.
    Unchanged,
    /// `dump`: the entries are listed.
    Listed,
    /// The file is well-formed but the operation was refused (a failed check, an ambiguous
    /// layout, a missing marker or symbol table): exit code 1.
    Refused,
    /// The file could not be read, parsed or written: exit code 2.
    Unreadable,
}

impl Status {
    /// Every status, in documentation order.
    pub const ALL: [Status; 8] = [
        Status::Clean,
        Status::Warnings,
        Status::Errors,
        Status::Sorted,
        Status::Unchanged,
        Status::Listed,
        Status::Refused,
        Status::Unreadable,
    ];

    /// The status of a finished check.
    pub fn of_check(report: &Report) -> Status {
        if report.has_errors() {
            Status::Errors
        } else if report.has_warnings() {
            Status::Warnings
        } else {
            Status::Clean
        }
    }

    /// The status of a failed operation.
    pub fn of_error(e: &crate::Error) -> Status {
        match e.failure {
            crate::Failure::Refused => Status::Refused,
            crate::Failure::Io | crate::Failure::Malformed => Status::Unreadable,
        }
    }
}

/// One file's result.
#[derive(Clone, Debug, Serialize)]
pub struct FileResult {
    /// The path as given.
    pub file: String,
    /// What happened.
    pub status: Status,
    /// Why it failed, for `refused` and `unreadable`.
    pub error: Option<String>,
    /// The check, when one ran.
    pub report: Option<Report>,
    /// `sort`: entries that changed slots.
    pub moved: Option<usize>,
    /// `sort`: the file written.
    pub written: Option<String>,
    /// `dump`: the listing.
    pub dump: Option<Dump>,
}

impl FileResult {
    /// A result with only a file and a status.
    pub fn new(file: &std::path::Path, status: Status) -> Self {
        FileResult {
            file: file.display().to_string(),
            status,
            error: None,
            report: None,
            moved: None,
            written: None,
            dump: None,
        }
    }

    /// The result of a failed operation, with the findings of a refused sort.
    pub fn failed(file: &std::path::Path, e: &crate::Error) -> Self {
        FileResult {
            error: Some(e.message.clone()),
            report: e.report.as_deref().cloned(),
            ..FileResult::new(file, Status::of_error(e))
        }
    }
}

/// The document one command prints.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// `check`, `sort` or `dump`.
    pub command: &'static str,
    /// One result per file, in the order given.
    pub files: Vec<FileResult>,
}

impl Document {
    /// An empty document for `command`.
    pub fn new(command: &'static str) -> Self {
        Document {
            schema: SCHEMA,
            command,
            files: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_to_the_documented_names() {
        let names = serde_json::to_string(&Status::ALL).unwrap();
        assert_eq!(
            names,
            r#"["clean","warnings","errors","sorted","unchanged","listed","refused","unreadable"]"#
        );
    }

    #[test]
    fn addresses_are_hex_strings() {
        let a = crate::report::Address {
            role: "insn",
            addr: 0xffff_ffff_8100_0000,
            symbol: "f".into(),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["addr"], "0xffffffff81000000");
    }
}
