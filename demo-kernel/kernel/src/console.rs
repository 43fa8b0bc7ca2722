//! `print!` / `println!` over the arch console, and the extable runtime's reporter.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::{Arch, Current};
use extable_runtime::report::{set_reporter, Level};

/// Writes formatted text to the arch console.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Current::console_write(s.as_bytes());
        Ok(())
    }
}

/// Print formatted text to the console (used by the macros).
pub fn print(args: fmt::Arguments<'_>) {
    // The console never fails.
    let _ = Console.write_fmt(args);
}

/// Print to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::print(format_args!($($arg)*)));
}

/// Print a line to the console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::print(format_args!("{}\n", format_args!($($arg)*))));
}

/// Fatal reports of the runtime (a fault inside a handler, a looping fixup) since boot.
static FATAL_REPORTS: AtomicUsize = AtomicUsize::new(0);

/// The extable runtime's warnings go to the console, Linux style.
fn reporter(level: Level, args: fmt::Arguments<'_>) {
    match level {
        Level::Warning => print(format_args!("WARNING: {}\n", args)),
        Level::Fatal => {
            FATAL_REPORTS.fetch_add(1, Ordering::Relaxed);
            print(format_args!("extable: fatal: {}\n", args))
        }
    }
}

/// How many fatal reports the runtime made since boot, on every CPU (each one a fault the
/// recursion guard refused).
pub fn fatal_reports() -> usize {
    FATAL_REPORTS.load(Ordering::Relaxed)
}

/// Install [`reporter`] as the runtime's reporter.
pub fn init_reporter() {
    set_reporter(reporter);
}
