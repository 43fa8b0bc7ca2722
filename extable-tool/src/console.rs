//! Printing without panicking: `println!` and `eprintln!` for the command line, redefined so
//! that a failed write is an outcome, not a panic.
//!
//! A closed pipe (`extable-tool check F | head -1`) ends the output quietly: later lines to
//! that stream are dropped and the exit status stays the one the work earned. Any other
//! failure (`ENOSPC` on `/dev/full`, `EIO`) makes the exit status at least 2, with a message
//! on stderr when stdout failed (when stderr itself fails there is nowhere to say it).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Print a line to stdout; a failure is recorded (see the module documentation).
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::line($crate::console::Stream::Stdout, format_args!($($arg)*))
    };
}

/// Print a line to stderr; a failure is recorded (see the module documentation).
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::console::line($crate::console::Stream::Stderr, format_args!($($arg)*))
    };
}

/// One of the two output streams.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether a stream was closed by its reader (no more writes are tried).
static CLOSED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
/// Whether a write failed for another reason than a closed pipe.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Write `args` and a newline to `stream`.
pub fn line(stream: Stream, args: fmt::Arguments<'_>) {
    if CLOSED[stream as usize].load(Ordering::Relaxed) {
        return;
    }
    let written = match stream {
        Stream::Stdout => writeln!(io::stdout().lock(), "{args}"),
        Stream::Stderr => writeln!(io::stderr().lock(), "{args}"),
    };
    if let Err(e) = written {
        failed(stream, &e);
    }
}

/// Record that writing to `stream` failed with `e`.
pub fn failed(stream: Stream, e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CLOSED[stream as usize].store(true, Ordering::Relaxed);
        return;
    }
    if !FAILED.swap(true, Ordering::Relaxed) && stream == Stream::Stdout {
        let _ = writeln!(
            io::stderr().lock(),
            "extable-tool: cannot write to standard output: {e}"
        );
    }
}

/// The exit status for work that earned `code`, once the output is flushed: at least 2 if
/// an output failed.
pub fn exit_status(code: i32) -> i32 {
    if !CLOSED[Stream::Stdout as usize].load(Ordering::Relaxed) {
        if let Err(e) = io::stdout().lock().flush() {
            failed(Stream::Stdout, &e);
        }
    }
    if FAILED.load(Ordering::Relaxed) {
        code.max(2)
    } else {
        code
    }
}
