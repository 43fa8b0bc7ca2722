//! The architecture interface: what each `arch/<name>` module gives the shared kernel.
//!
//! The shared modules (console, report, mm, signal, task, scenarios) never name an
//! architecture. They call the functions of the [`Arch`] trait through [`Current`], and the
//! page-table operations of [`crate::mm::PageTables`] through [`Arch::Space`].
//!
//! Boot flow, the same on every architecture:
//! 1. the arch's boot code (PVH entry on x86_64, reset vector on ARM) sets this CPU's number
//!    ([`Arch::cpu_id`]), stacks, the MMU, the exception vectors and the console, then calls
//!    [`crate::kernel_main`] with the kernel command line;
//! 2. `kernel_main` installs the extable reporter, registers [`crate::percpu::guard`] as
//!    the runtime's guard accessor, checks the table, runs the scenarios
//!    ([`crate::scenarios`], plus [`Arch::scenarios`]) and ends with [`Arch::exit`];
//! 3. the `smp_fixups` scenario starts the other CPUs ([`Arch::start_secondaries`]): each
//!    sets up the same per-CPU state and enters [`crate::percpu::secondary_main`].
//!
//! Faults come back into shared code the same way everywhere: the arch's fault handler
//! counts the fault on this CPU ([`crate::percpu::count_fault`]), decodes its syndrome into
//! a [`crate::mm::Access`] and calls [`crate::mm::do_user_addr_fault`] for user addresses; a
//! user-mode fault that cannot be served ends in [`crate::signal::force_sig`]; a kernel-mode
//! fault that cannot be served goes to `extable_runtime::fixup_exception` (which takes this
//! CPU's guard from [`crate::percpu::guard`], registered by [`crate::kernel_main`] as the
//! runtime's guard accessor) and, failing that, to the arch's oops path, which prints its
//! `BUG:` lines, then calls [`crate::report::die`].

use crate::mm::PageTables;
use crate::report::ExitCode;
use crate::scenarios::Scenario;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use self::x86_64::X86_64 as Current;

#[cfg(target_arch = "arm")]
pub mod arm;
#[cfg(target_arch = "arm")]
pub use self::arm::Armv7 as Current;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use self::aarch64::Aarch64 as Current;

/// Where the user task's pieces live in its address space (all user addresses, page aligned).
#[derive(Clone, Copy, Debug)]
pub struct UserLayout {
    /// The user program's text ([`Arch::user_text`] mapped read + exec).
    pub text: usize,
    /// A demand-zero read/write area of [`UserLayout::data_len`] bytes.
    pub data: usize,
    /// Length of the data area.
    pub data_len: usize,
    /// One read-only page.
    pub rodata: usize,
    /// An address inside no VMA.
    pub unmapped: usize,
    /// Top of the grows-down stack VMA (exclusive).
    pub stack_top: usize,
    /// Initial size of the stack VMA.
    pub stack_len: usize,
    /// How far the stack may grow in total (Linux's `RLIMIT_STACK`).
    pub stack_limit: usize,
    /// A kernel address (mapped for the kernel, not for user mode).
    pub kernel_addr: usize,
}

/// The operations the user program ([`Arch::user_text`]) performs, selected by its first
/// argument. The program ends with the exit system call; its exit code is the result.
pub mod user_op {
    /// Load the byte at `a`; exit code = the byte.
    pub const READ: usize = 0;
    /// Store byte `b` at `a`, load it back; exit code = the byte loaded.
    pub const WRITE: usize = 1;
    /// Store a byte `a` bytes below the stack pointer, load it back; exit code = the byte
    /// (1 when the store landed).
    pub const STACK: usize = 2;
    /// Call the write system call on `a` with length `b`; exit code = its return value.
    pub const SYS_WRITE: usize = 3;
    /// Jump to `a` (an instruction fetch from user mode).
    pub const EXEC: usize = 4;
}

/// System call numbers of the demo kernel (arch-neutral; the arch's trap entry passes the
/// number and three arguments to [`crate::task::syscall`]).
pub mod sys {
    /// `exit(code)`: ends the task; [`crate::task::run`] returns `Exited(code)`.
    pub const EXIT: usize = 0;
    /// `write(buf, len)`: copies the user buffer with `copy_from_user` and prints it.
    pub const WRITE: usize = 1;
}

/// What an architecture provides. Implemented by a zero-sized type; [`Current`] names the one
/// being built. Every function is called with interrupts masked; the boot CPU runs the
/// scenarios, and the other CPUs (see [`Arch::start_secondaries`]) only run the code they are
/// handed.
pub trait Arch {
    /// Architecture name for the banner and the `DONE` line ("x86_64", "armv7", "aarch64").
    const NAME: &'static str;

    /// The arch's page tables for one address space (a user task's, sharing the kernel half
    /// with the reference table, as Linux's `pgd_alloc` does).
    type Space: PageTables;

    /// Write bytes to the console (serial port / UART), polling, never faulting.
    fn console_write(bytes: &[u8]);

    /// Stop the machine with `code` (QEMU isa-debug-exit on x86_64, semihosting on ARM and
    /// AArch64).
    fn exit(code: ExitCode) -> !;

    /// Microseconds since the arch's boot code started (TSC, generic timer...).
    fn now_us() -> u64;

    /// Kernel virtual address through which physical address `pa` is reachable (Linux's
    /// `__va`), for page-table frames and page contents.
    fn phys_to_virt(pa: usize) -> usize;

    /// Physical memory the frame allocator may hand out (page aligned, unused by the image).
    fn free_memory() -> core::ops::Range<usize>;

    /// The highest user address plus one (Linux's `TASK_SIZE_MAX`): the uaccess range check
    /// refuses anything at or above it.
    fn user_limit() -> usize;

    /// The user address-space layout of the demo task.
    fn user_layout() -> UserLayout;

    /// The user program: physical address and length of its text (page aligned start), and
    /// the offset of its entry point. It takes `(op, a, b)` in its first three argument
    /// registers and performs [`user_op`] `op`.
    fn user_text() -> (usize, usize, usize);

    /// Enter user mode at `entry` with stack pointer `sp` and `args` in the first three
    /// argument registers, in the currently active address space. Returns the value passed to
    /// [`Arch::leave_user`] once the task exits or is killed.
    fn enter_user(entry: usize, sp: usize, args: [usize; 3]) -> usize;

    /// Abandon the user task (from a system call or a fault handler running on its behalf)
    /// and return `value` from the pending [`Arch::enter_user`].
    fn leave_user(value: usize) -> !;

    /// Switch back to the kernel's reference page tables (init_mm).
    fn activate_kernel_space();

    /// This CPU's number: 0 for the boot CPU, then 1, 2, ... in bring-up order (below [`crate::percpu::MAX_CPUS`]).
    fn cpu_id() -> usize;

    /// Start every other CPU the machine has (up to [`crate::percpu::MAX_CPUS`]); each runs `entry(cpu)` on
    /// its own stack with its exception vectors, MMU and per-CPU data ready, and parks when `entry`
    /// returns. Returns how many CPUs are online, this one included.
    fn start_secondaries(entry: fn(usize)) -> usize;

    /// Scenarios only this architecture has (run after the common ones).
    fn scenarios() -> &'static [Scenario];

    /// A kernel load of `addr` (which must fault) whose exception-table entry has
    /// [`crate::scenarios::hold_in_fixup`] as its handler: `true` when it faulted and was
    /// fixed. The faulting instruction is the arch's; what the handler does is shared.
    fn load_held_in_fixup(addr: usize) -> bool;

    /// Whether this CPU runs with the protections the boot CPU set against the kernel
    /// touching user memory outside uaccess (SMEP/SMAP on x86_64, PAN on AArch64); checked
    /// on every CPU by `smp_fixups`. ARMv7 has none.
    fn user_access_protected() -> bool {
        true
    }

    /// Memory-access faults (page faults, data/prefetch aborts) taken since boot, if the
    /// arch counts them: lets scenarios show that an access was refused without faulting.
    fn faults_taken() -> Option<usize> {
        None
    }

    /// Whether `copy_from_kernel_nofault` refuses an address in the user range before any
    /// access (x86_64, as Linux's x86 `copy_from_kernel_nofault_allowed`), rather than
    /// reading it and having the fault fixed through the table (ARMv7 and AArch64, as
    /// Linux's generic one). Fixes how many faults the `nofault_*` probes of NULL and 0x880
    /// must take: none, or exactly one.
    const NOFAULT_REFUSES_USER: bool;
}
