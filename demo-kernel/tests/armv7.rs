//! Boots the ARMv7-A demo kernel in QEMU (`virt`, Cortex-A15, TCG) and asserts every
//! scenario: the data abort dispatch (DFSR/DFAR through fsr_info), the
//! translation-fault copy from the reference table, the user page-fault paths, the kernel
//! fixups, prefetch aborts, the undefined-instruction hooks, the Thumb-2 paths, and the
//! dedicated oops boots, each of which must end with the kernel's failure status.
//!
//! The kernel is built once per test binary (release, linked through `extable-link`, so
//! extable-tool sorts and checks its table in the link) and the main boot runs once; each
//! test asserts the RESULT lines of one fault path.

mod common;

use std::path::Path;

use demo_kernel::{Arch, Boot, BootEnd, KernelExit, Verdict};

const ARCH: Arch = Arch::Armv7;

/// The kernel, built once.
fn kernel() -> &'static Path {
    common::kernel(ARCH)
}

/// The main boot, run once.
fn main_boot() -> &'static Boot {
    common::main_boot(ARCH)
}

/// Assert that `scenario` passed in the main boot and that its detail contains each of
/// `needles`; returns the detail.
fn passed(scenario: &str, needles: &[&str]) -> String {
    main_boot().expect_pass(scenario, needles).detail
}

/// Assert that the console of the main boot shows `line`.
fn console_shows(line: &str) {
    main_boot().expect_console(line);
}

/// Boot dedicated scenario `name`; it must end in an oops, as the harness's table says.
fn dedicated(name: &str) -> Boot {
    common::dedicated_oops(ARCH, name)
}

#[test]
fn main_boot_passes_every_scenario_and_exits_through_semihosting() {
    let b = main_boot();
    let done = b
        .done()
        .unwrap_or_else(|| panic!("no DONE line\n{}", b.transcript));
    let results = b.results();
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    assert!(failed.is_empty(), "failed: {failed:#?}\n{}", b.transcript);
    assert_eq!(done.total, results.len(), "{}", b.transcript);
    assert_eq!(done.failed, 0);
    assert_eq!(
        b.end,
        BootEnd::Kernel(KernelExit::Passed),
        "{}",
        b.transcript
    );
    // The ARM scenarios all ran (the dedicated ones did not).
    for s in [
        "arm_dabt_decode",
        "arm_translation_fault_copy",
        "arm_unhandled_alignment",
        "arm_t32_demand_fault",
        "arm_t32_segv",
        "arm_t32_kernel_fixup",
        "arm_kernel_fixup_decode",
        "arm_put_user_readonly",
        "arm_pabt_unmapped",
        "arm_pabt_xn",
        "arm_pabt_t32",
        "arm_undef_hook_user_a32",
        "arm_undef_hook_user_t32",
        "arm_undef_hook_cpsr_match",
        "arm_undef_sigill_a32",
        "arm_undef_sigill_t16",
        "arm_undef_sigill_t32",
        "arm_undef_hook_kernel",
        "arm_undef_hook_kernel_t16",
    ] {
        assert!(
            results.iter().any(|r| r.scenario == s),
            "{s} did not run\n{}",
            b.transcript
        );
    }
    assert!(!results.iter().any(|r| r.scenario.starts_with("arm_oops")));
}

#[test]
fn boot_time_is_printed_by_the_kernel_clock() {
    let b = main_boot();
    let done = b.done().expect("DONE line");
    // The kernel prints the generic timer's time from machine start to its last scenario;
    // the figure is reported here, not asserted (the demo prints it too).
    assert!(done.micros > 0, "{}", b.transcript);
    println!(
        "armv7: kernel clock {} us to the last scenario; wall clock {:?} to DONE",
        done.micros, b.to_done
    );
}

#[test]
fn table_is_sorted_by_extable_tool_in_the_build() {
    let detail = passed(
        "extable_table",
        &["marker_sorted=true", "order=SortedByTool"],
    );
    let report = extable_tool::check_file(kernel(), &extable_tool::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.has_errors(), "{}\n{detail}", report.summary());
    // The fixup stubs live in .text.fixup, so every fixup is known fixup code.
    assert_eq!(report.warnings, 0, "{:#?}", report.lines());
    assert!(report.sorted && report.entries > 0, "{}", report.summary());
    assert_eq!(report.marker.as_ref().and_then(|m| m.value), Some(0));
}

#[test]
fn data_abort_reads_dfsr_dfar_and_dispatches_through_fsr_info() {
    // A read outside every VMA: section translation fault, WnR clear, DFAR = the address;
    // a write to the read-only VMA: WnR set. Both reach SIGSEGV through the table.
    passed(
        "arm_dabt_decode",
        &[
            "read: SIGSEGV (SEGV_MAPERR) signal 11 code 1, dfsr=0x005 (section translation fault) dfar=0x00300004",
            "write: SIGSEGV (SEGV_ACCERR) signal 11 code 2, dfsr=0x805 (section translation fault) dfar=0x0020000c",
        ],
    );
}

#[test]
fn unhandled_status_prints_unhandled_fault_and_sends_sigbus() {
    passed(
        "arm_unhandled_alignment",
        &[
            "killed by SIGBUS (BUS_ADRALN) signal 7 code 1",
            "dfsr=0x001 fs=0x1 (alignment exception)",
        ],
    );
    console_shows("Unhandled fault: alignment exception (0x001) at 0x00102001");
}

#[test]
fn translation_fault_copies_the_first_level_entry_from_init_mm_and_retries() {
    passed(
        "arm_translation_fault_copy",
        &[
            "read 0x7e57ab1e then 0x7e57ab1e",
            "aborts +1 then +0",
            "L1 copies +1 then +0",
            "(section translation fault)",
        ],
    );
}

#[test]
fn user_page_faults_serve_vmas_and_signal_the_task() {
    passed("user_demand_zero", &["minor faults 1/1/1"]);
    passed("user_stack_growth", &["exited 0x1"]);
    passed(
        "user_stack_limit",
        &["killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1"],
    );
    passed(
        "user_write_readonly",
        &["killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2"],
    );
    passed(
        "user_outside_vmas",
        &["killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1"],
    );
    passed(
        "user_kernel_address",
        &["killed by SIGSEGV (SEGV_", ") signal 11 code "],
    );
    // The kernel goes on after each signal: later scenarios ran and the boot completed.
    assert!(main_boot().done().is_some());
    console_shows("SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x200008: killing the task");
}

#[test]
fn kernel_faults_are_fixed_through_the_exception_table() {
    // copy_from_kernel_nofault of NULL and of the seed's 0x880 returns an error: Linux's
    // generic copy_from_kernel_nofault_allowed permits them, so the read faults once and the
    // table fixes it.
    passed(
        "nofault_null",
        &["copy_from_kernel_nofault(0x0) = Err(Efault) after 1 fault(s), 1 expected (fixed through the table)"],
    );
    passed(
        "nofault_0x880",
        &["copy_from_kernel_nofault(0x880) = Err(Efault) after 1 fault(s), 1 expected (fixed through the table)"],
    );
    // The same, seen from the ARM fault path: an SVC-mode data abort at DFAR 0.
    passed(
        "arm_kernel_fixup_decode",
        &[
            "dfsr=0x005 fs=0x5 (section translation fault) dfar=0x00000000",
            "A32; nofault(NULL) = Err(Efault)",
        ],
    );
    // copy_from_user into an unmapped page: the exact number of bytes not copied.
    passed("copy_from_user_partial", &["1->255 7->249 100->156 255->1"]);
    // A kernel store into a read-only user page: page permission fault, access_error,
    // fixed through the table.
    passed(
        "arm_put_user_readonly",
        &[
            "put_user = Err(Efault), then get_user = Ok(0)",
            "dfsr=0x80f (page permission fault) dfar=0x00200010",
        ],
    );
    // A Thumb-2 kernel load fixed through the table resumes in Thumb state.
    passed(
        "arm_t32_kernel_fixup",
        &[
            "dfar=0x00000880",
            "T32; probe(0x880) = Err(fault), probe(ok) = 0x5eed7332; aborts +1",
        ],
    );
}

#[test]
fn user_accessors_refuse_kernel_addresses_before_any_access() {
    passed("get_user_kernel_address", &["Err(Efault), 0 faults taken"]);
    passed("put_user_kernel_address", &["Err(Efault), 0 faults"]);
    passed(
        "user_syscall_write",
        &[
            "write(user buf) exited 0x14",
            "write(kernel ptr) exited 0xfffffff2",
        ],
    );
    console_shows("user: hello from user mode");
}

#[test]
fn thumb2_data_aborts_are_corrected_and_retried() {
    passed(
        "arm_t32_demand_fault",
        &[
            "exited 0xa5",
            "write dfar=0x00103021",
            "T32",
            "minor faults +1",
        ],
    );
    passed(
        "arm_t32_segv",
        &[
            "killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0x300008",
            "T32",
        ],
    );
}

#[test]
fn prefetch_aborts_decode_ifsr_ifar_and_send_sigsegv() {
    passed(
        "arm_pabt_unmapped",
        &[
            "killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0x300100",
            "ifsr=0x005 fs=0x5 (section translation fault) ifar=0x00300100",
        ],
    );
    passed(
        "arm_pabt_t32",
        &[
            "killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0x300200",
            "ifar=0x00300200 pc=0x00300200 T32",
        ],
    );
    passed(
        "user_exec_data",
        &["killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x100000"],
    );
    passed(
        "arm_pabt_xn",
        &[
            "killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x104000",
            "ifsr=0x00f fs=0xf (page permission fault) ifar=0x00104000",
        ],
    );
}

#[test]
fn undef_hooks_emulate_and_the_task_resumes() {
    passed("arm_undef_hook_user_a32", &["instr=0xee100f10", "A32"]);
    passed("arm_undef_hook_user_t32", &["instr=0xee100f10", "T32"]);
    passed(
        "arm_undef_hook_cpsr_match",
        &[
            "killed by SIGILL (ILL_ILLOPC) signal 4 code 1",
            "without the T32 hook",
        ],
    );
    passed(
        "arm_undef_hook_kernel",
        &["instr=0xe7f001f3", "resumed after it with r=42"],
    );
    passed(
        "arm_undef_hook_kernel_t16",
        &["instr=0x0000de13", "T32; resumed after it with r=43"],
    );
    console_shows("WARNING: CPU: 0 at 0x");
}

#[test]
fn undefined_instruction_without_hook_is_sigill_for_the_user() {
    passed(
        "arm_undef_sigill_a32",
        &[
            "killed by SIGILL (ILL_ILLOPC) signal 4 code 1",
            "instr=0xe7f000f7",
            "A32",
        ],
    );
    passed(
        "arm_undef_sigill_t16",
        &[
            "killed by SIGILL (ILL_ILLOPC) signal 4 code 1",
            "instr=0x0000de07",
            "T32",
        ],
    );
    passed(
        "arm_undef_sigill_t32",
        &[
            "killed by SIGILL (ILL_ILLOPC) signal 4 code 1",
            "instr=0xf7f0a007",
            "T32",
        ],
    );
}

#[test]
fn oops_null_dereference_dies_with_the_failure_status() {
    dedicated("arm_oops_null");
}

#[test]
fn oops_paging_request_dies_with_the_failure_status() {
    dedicated("arm_oops_paging");
}

#[test]
fn oops_undefined_instruction_in_the_kernel_dies_with_the_failure_status() {
    dedicated("arm_oops_undef");
}

#[test]
fn oops_kernel_prefetch_abort_dies_with_the_failure_status() {
    dedicated("arm_oops_pabt");
}

/// With two CPUs (the harness's default) the second one is started, and every CPU takes
/// its ten thousand fixed faults at the same time as the other, through its own recursion
/// guard, while the boot CPU cycles a module table the other looks up: no wrong outcome, no
/// recursion report.
#[test]
fn smp_fixups_run_on_two_cpus_at_once() {
    main_boot().expect_console("armv7: PSCI CPU_ON (hvc) started 1 secondary CPU(s): 2 online");
    let s = main_boot().expect_smp_fixups(2);
    println!("armv7 smp_fixups with 2 CPUs: {s:?}");
}

/// With one CPU the kernel starts nobody, and every scenario still passes (`smp_fixups`
/// with `cpus=1`).
#[test]
fn one_cpu_boot_still_passes_every_scenario() {
    common::one_cpu_boot(ARCH);
}
