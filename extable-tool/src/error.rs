//! Errors: what went wrong with which file, and the exit code it maps to.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::report::Report;

/// Why an operation on a file failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The file could not be opened, read, mapped or written (exit 2).
    Io,
    /// The file is not a well-formed ELF file, or its table lies outside it (exit 2).
    Malformed,
    /// The file is well-formed but the operation is refused: a check failed, the layout is
    /// ambiguous or unsupported, the marker is missing (exit 1).
    Refused,
}

impl Failure {
    /// The process exit code: 1 for a refusal, 2 for a file that could not be read or parsed.
    pub fn exit_code(self) -> i32 {
        match self {
            Failure::Refused => 1,
            Failure::Io | Failure::Malformed => 2,
        }
    }
}

/// A failure, without the file it happened to (see [`Error`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Problem {
    /// The kind of failure.
    pub failure: Failure,
    /// One line describing it.
    pub message: String,
    /// The operating system's error behind an I/O failure, kept for [`Error::source`].
    source: Option<Arc<io::Error>>,
}

/// Two problems are equal when their kind and message are: the I/O error behind one is
/// already part of its message.
impl PartialEq for Problem {
    fn eq(&self, other: &Self) -> bool {
        self.failure == other.failure && self.message == other.message
    }
}

impl Eq for Problem {}

impl Problem {
    /// A refusal.
    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Problem {
            failure: Failure::Refused,
            message: message.into(),
            source: None,
        }
    }

    /// A malformed file.
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Problem {
            failure: Failure::Malformed,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O error.
    pub(crate) fn io(message: impl Into<String>) -> Self {
        Problem {
            failure: Failure::Io,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O error while doing `what` (`cannot open`, …): the message is `what: ERROR`
    /// and `error` stays available as the [`Error`]'s source.
    pub(crate) fn io_error(what: &str, error: io::Error) -> Self {
        Problem {
            failure: Failure::Io,
            message: format!("{what}: {error}"),
            source: Some(Arc::new(error)),
        }
    }

    /// Attach the file name.
    pub(crate) fn in_file(self, file: &Path) -> Error {
        Error {
            file: file.to_path_buf(),
            failure: self.failure,
            message: self.message,
            report: None,
            source: self.source,
        }
    }
}

/// A failed operation on a file. Displays as one line: `FILE: problem`. For a file that
/// could not be opened, read or written, [`source`](std::error::Error::source) is the
/// [`io::Error`] (match its [`kind`](io::Error::kind)).
#[derive(Debug)]
#[non_exhaustive]
pub struct Error {
    /// The file.
    pub file: PathBuf,
    /// The kind of failure.
    pub failure: Failure,
    /// One line describing it.
    pub message: String,
    /// The findings that made a sort refuse, when a check failed.
    pub report: Option<Box<Report>>,
    /// The operating system's error behind an I/O failure.
    source: Option<Arc<io::Error>>,
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        self.failure.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl Error {
    /// The operating system's error behind an I/O failure, if there was one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_deref()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_error().map(|e| e as _)
    }
}
