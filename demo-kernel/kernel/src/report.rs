//! Machine-readable results.
//!
//! Every scenario prints exactly one line
//! `RESULT <scenario> PASS|FAIL|OOPS <detail>`; a boot that runs to the end prints
//! `DONE <n> scenarios, <fails> failed, <t> us` (time since the arch's boot code started) and
//! exits with [`ExitCode::Passed`] or [`ExitCode::Failed`]. A dedicated oops scenario ends in
//! [`die`]: `RESULT <scenario> OOPS <why>` and [`ExitCode::Oops`].

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::arch::{Arch, Current};
use crate::println;

/// Why the kernel stops; the arch maps it to the emulator's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Every scenario passed.
    Passed = 0,
    /// At least one scenario failed.
    Failed = 1,
    /// The oops path ran (an unhandled kernel fault).
    Oops = 2,
    /// A Rust panic.
    Panic = 3,
}

/// A scenario's one-line detail, formatted without allocation (truncated when too long).
pub struct Detail {
    buf: [u8; 256],
    len: usize,
}

impl Detail {
    /// An empty detail.
    pub const fn new() -> Self {
        Detail {
            buf: [0; 256],
            len: 0,
        }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are appended, cut at a char boundary.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("<detail>")
    }
}

impl Write for Detail {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Name of the scenario that is running (for the oops path's `RESULT` line).
static CURRENT_PTR: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static CURRENT_LEN: AtomicUsize = AtomicUsize::new(0);

/// Remember which scenario is running.
pub fn set_current(name: &'static str) {
    CURRENT_LEN.store(name.len(), Ordering::Relaxed);
    CURRENT_PTR.store(name.as_ptr() as *mut u8, Ordering::Relaxed);
}

fn current() -> &'static str {
    let p = CURRENT_PTR.load(Ordering::Relaxed);
    if p.is_null() {
        return "boot";
    }
    // SAFETY: only the parts of a `&'static str` are stored, by `set_current`.
    unsafe {
        core::str::from_utf8_unchecked(core::slice::from_raw_parts(
            p,
            CURRENT_LEN.load(Ordering::Relaxed),
        ))
    }
}

/// Print a scenario's result line.
pub fn result(name: &str, pass: bool, detail: &str) {
    let verdict = if pass { "PASS" } else { "FAIL" };
    println!("RESULT {} {} {}", name, verdict, detail);
}

/// Print the final line and stop with the overall status.
pub fn done(total: usize, failed: usize) -> ! {
    println!(
        "DONE {} scenarios, {} failed, {} us",
        total,
        failed,
        Current::now_us()
    );
    Current::exit(if failed == 0 {
        ExitCode::Passed
    } else {
        ExitCode::Failed
    })
}

/// The end of the oops path: the running scenario's `OOPS` line, then stop with
/// [`ExitCode::Oops`] (Linux's `die` / `oops_end` without a process to kill).
pub fn die(why: &str) -> ! {
    println!("---[ end trace ]---");
    println!("RESULT {} OOPS {}", current(), why);
    Current::exit(ExitCode::Oops)
}

/// Stop with `code` after printing the running scenario's line (for panics).
pub fn die_with(code: ExitCode) -> ! {
    println!("RESULT {} FAIL stopped with {:?}", current(), code);
    Current::exit(code)
}
