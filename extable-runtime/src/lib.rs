//! `extable-runtime`: kernel exception tables for Rust, `no_std` and allocation-free.
//!
//! Every instruction that may fault on purpose (a user copy, a debugger's probe of an
//! arbitrary address) gets an entry in the `__ex_table` section: the instruction, the fixup to
//! resume at, and the handler that fixes the fault ([`entry`]). When the CPU faults, the
//! kernel's fault path calls [`fixup_exception`], which binary-searches the tables
//! ([`table`], [`search`]) for the faulting pc and lets the entry's [`Handler`] rewrite the
//! saved registers ([`ExRegs`]), so the access returns an error instead of an oops.
//!
//! * The table is sorted at build time by `extable-tool sort`, which clears the marker
//!   [`entry::SORT_MARKER_SYMBOL`]; otherwise [`table::init_main_table_writable`] sorts it at
//!   boot, as Linux's `sort_main_extable` does.
//! * Module tables are registered at run time ([`table::Module`]).
//! * With the `hosted` feature, the `hosted` module recovers real `SIGSEGV`/`SIGBUS` in Linux user
//!   space through the same tables and handlers.
#![no_std]
#![warn(missing_docs)]

#[cfg(any(test, all(feature = "hosted", target_os = "linux")))]
extern crate std;

pub mod arch;
pub mod entry;
#[cfg(not(feature = "loom"))]
pub mod fixup;
pub mod handlers;
pub mod regs;
pub mod report;
pub mod search;
pub mod sort;
mod sync;
pub mod table;
pub mod trap;
pub mod uaccess;

/// Linux user space only: the feature is ignored on other targets.
#[cfg(all(feature = "hosted", target_os = "linux", not(feature = "loom")))]
pub mod hosted;

pub use entry::ExceptionTableEntry;
#[cfg(not(feature = "loom"))]
pub use fixup::{
    fixup_exception, fixup_exception_with, set_guard_accessor, FixupGuard, GuardAccessor, Unfixed,
};
pub use handlers::Handler;
pub use regs::{ExRegs, NO_REG};
#[cfg(not(feature = "loom"))]
pub use table::search_exception_tables;
pub use trap::{FaultKind, Trap};

pub use extable_macros::{extable, handler};
pub use uaccess::Fault;
