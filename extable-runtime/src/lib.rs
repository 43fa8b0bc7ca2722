//! `extable-runtime`: kernel exception tables for Rust, `no_std` and allocation-free.
//!
//! Every instruction that may fault on purpose (a user copy, a debugger's probe of an
//! arbitrary address) gets an entry in the `__ex_table` section: the instruction, the fixup to
//! resume at, and the handler that fixes the fault ([`entry`]). When the CPU faults, the
//! kernel's fault path calls [`fixup_exception`], which binary-searches the tables
//! ([`table`], [`search`]) for the faulting pc and lets the entry's [`Handler`] rewrite the
//! saved registers ([`ExRegs`]), so the access returns an error instead of an oops.
//!
//! * Entries come from the macros: `[ex]` marks in [`asm!`] and in the `asm!` blocks of an
//!   [`#[extable]`](extable) function (see below).
//! * Module tables are registered at run time ([`table::Module`]).
//! * With the `hosted` feature, the `hosted` module recovers real `SIGSEGV`/`SIGBUS` in Linux
//!   user space through the same tables and handlers.
//!
//! The kernel templates in the repository (`templates/x86_64`, `templates/aarch64`) show the
//! whole path in a few hundred lines: linker script, entry, vector, table init, one probe and
//! one module table.
//!
//! # What a kernel calls (one CPU or several)
//!
//! | when | call |
//! |------|------|
//! | boot, once, before anything can fault | [`set_guard_accessor`] with a function returning the running CPU's [`FixupGuard`] (one guard per CPU, e.g. a per-CPU array indexed by the CPU number); without it no fault is fixed |
//! | boot, once | `unsafe` [`uaccess::set_user_range`] (or [`uaccess::set_user_limit`]); until then every user access fails with `Efault` |
//! | boot, once | the main table's init (below) |
//! | every CPU's fault path | [`fixup_exception`]`(regs, &trap)`: `Ok(())` returns from the exception into the fixup, `Err` goes on to the oops |
//! | module load and unload | [`table::Module::load`], [`table::register_module`], [`table::Module::trim_init`], [`table::unregister_module`] (waits until no lookup sees the table; never from a handler) |
//!
//! # The linker script: two rules
//!
//! 1. `__ex_table` gets an output section of its own, named `__ex_table`, with
//!    `__start___ex_table` and `__stop___ex_table` around `KEEP(*(__ex_table))`: the runtime
//!    finds the table between the two symbols, `extable-tool` finds it by name, and `KEEP`
//!    stops `--gc-sections` from dropping entries nothing refers to. A table merged into
//!    another section (`.rodata`, say) leaves the symbols undefined; `extable-tool` then says
//!    what to add.
//! 2. `.text.fixup` (the out-of-line fixup stubs) gets an output section of its own, placed
//!    before the rule that collects `.text.*`, which would otherwise swallow it.
//!
//! The crate ships both rules, and the placement of the sort marker, as a fragment per
//! architecture in `link/` (`extable-x86_64.ld`, `extable-arm.ld`, `extable-aarch64.ld`);
//! its build script puts that directory on the linker's search path, so a kernel's script
//! only says, inside `SECTIONS` and before its `.text`:
//!
//! ```text
//! INCLUDE extable-x86_64.ld
//! ```
//!
//! # Initialising the main table
//!
//! | the table is                                                        | call, once, early                          | lookups   |
//! |---------------------------------------------------------------------|--------------------------------------------|-----------|
//! | sorted by `extable-tool` (the kernel links through it, or runs `extable-tool sort`) | [`table::init_main_table`] (only verifies, never writes) | binary search |
//! | not sorted, in a writable segment                                   | `unsafe` [`table::init_main_table_writable`] (sorts in place, as Linux's `sort_main_extable`) | binary search |
//! | not sorted, read-only (rust-lld's default puts `__ex_table`, an `"aR"` section, in a read-only segment; so does the fragment) | [`table::init_main_table`] | linear search: link through `extable-tool` |
//!
//! [`table::init_main_table_writable`] on a read-only table faults: never call it there.
//! Without an init call, the first lookup runs [`table::init_main_table`]. The returned
//! [`table::TableReport`] says which case it found ([`table::Order`]).
//!
//! # Marks work only in this crate's `asm!`
//!
//! `[ex]` is a mark for [`asm!`] (this crate's, a wrapper of `core::arch::asm!`) and for the
//! `asm!` blocks inside an [`#[extable]`](extable) function, which the attribute rewrites.
//! Anywhere else, a plain `core::arch::asm!` hands `[ex] mov ...` to the assembler as it is:
//! no entry is emitted, and the assembler rejects the line with "unexpected token at start
//! of statement", pointing at the template. The error only comes once the function is
//! code-generated: an inlinable or generic function that nothing instantiates compiles
//! without it.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
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

// Linux user space only: the feature is ignored on other targets. (A plain comment: an outer
// doc comment here would be merged with the module's own docs and resolve their links from
// the crate root.)
#[cfg(all(feature = "hosted", target_os = "linux", not(feature = "loom")))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "hosted", target_os = "linux"))))]
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
