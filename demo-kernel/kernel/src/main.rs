//! The extable demo kernel: boots in QEMU, walks the fault paths of the seeds and reports one
//! `RESULT` line per scenario on the console (see `report`).
//!
//! The shared modules are architecture-neutral; `arch` holds each architecture's boot code,
//! exception entry, page tables and user-mode switch behind the [`arch::Arch`] interface.
#![no_std]
#![no_main]

mod arch;
mod cell;
mod console;
mod mm;
mod percpu;
mod report;
mod scenarios;
mod signal;
mod task;
mod uaccess;

use arch::{Arch, Current};

/// The shared kernel, entered by the arch's boot code once the MMU, the exception vectors and
/// the console are up. `cmdline` is the kernel command line (`scenario=NAME` selects one
/// scenario, which is how the harness boots the dedicated oops scenarios).
pub fn kernel_main(cmdline: &str) -> ! {
    console::init_reporter();
    // Before any CPU can fault into the table: every fault path calls
    // `extable_runtime::fixup_exception`, which takes the running CPU's guard from here.
    extable_runtime::set_guard_accessor(percpu::guard);
    // SAFETY: below the arch's user limit there is only user memory, which Rust code never
    // references (the uaccess range check's contract).
    unsafe { extable_runtime::uaccess::set_user_limit(Current::user_limit()) };
    println!(
        "extable demo kernel ({}), cmdline \"{}\"",
        Current::NAME,
        cmdline
    );
    let (total, failed) = scenarios::run(cmdline);
    println!(
        "mm: {} page frames used, {} minor faults",
        mm::frames_used(),
        mm::minor_faults()
    );
    report::done(total, failed)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("Kernel panic - not syncing: {}", info);
    report::die_with(report::ExitCode::Panic)
}
