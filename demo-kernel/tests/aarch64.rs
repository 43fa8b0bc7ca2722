//! Boots the AArch64 demo kernel in QEMU (`virt`, `-cpu max`, TCG, two CPUs on two host
//! threads) and asserts every scenario: the ESR decode and `fault_info[]` dispatch, the
//! kernel fixups (with PAN on and LDTR/STTR uaccess), the TTBR0/TTBR1 split, the EL0
//! signals, the MRS-emulating undef hook, WARN, `smp_fixups` on both CPUs at once (and a
//! one-CPU boot), and the dedicated oops boots, each of which must end with the kernel's failure status.
//!
//! The kernel is built once per test binary (release, linked through `extable-link`, so
//! extable-tool sorts and checks its table in the link) and the main boot runs once.

mod common;

use std::path::Path;

use demo_kernel::{Arch, Boot, BootEnd, KernelExit, Verdict};

const ARCH: Arch = Arch::Aarch64;

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

/// The AArch64-only scenarios of the main boot.
const AARCH64_SCENARIOS: &[&str] = &[
    "aarch64_dabt_decode",
    "aarch64_kernel_fixup_decode",
    "aarch64_put_user_readonly",
    "aarch64_uaccess_err_zero",
    "aarch64_pan_fixup",
    "aarch64_ttbr_split",
    "aarch64_sigbus_unaligned_exclusive",
    "aarch64_iabt_uxn",
    "aarch64_pc_alignment",
    "aarch64_sigill",
    "aarch64_undef_hook_mrs",
    "aarch64_sigtrap_brk",
    "aarch64_warn",
    "smp_fixups",
];

fn all_passed(b: &Boot) {
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
    for s in AARCH64_SCENARIOS {
        assert!(
            results.iter().any(|r| r.scenario == *s),
            "{s} did not run\n{}",
            b.transcript
        );
    }
    assert!(!results
        .iter()
        .any(|r| r.scenario.starts_with("aarch64_oops")));
}

#[test]
fn main_boot_passes_every_scenario_and_exits_through_semihosting() {
    all_passed(main_boot());
    console_shows("MMU on (4K pages, 39-bit VAs, TTBR1 0x");
    console_shows("PAN on");
}

#[test]
fn boot_time_is_printed_by_the_kernel_clock() {
    let b = main_boot();
    let done = b.done().expect("DONE line");
    assert!(done.micros > 0, "{}", b.transcript);
    println!(
        "aarch64: kernel clock {} us to the last scenario; wall clock {:?} to DONE",
        done.micros, b.to_done
    );
}

#[test]
fn table_is_sorted_by_extable_tool_in_the_build() {
    let detail = passed(
        "extable_table",
        &["marker_sorted=true", "order=SortedByTool", "conflicts=0"],
    );
    let report = extable_tool::check_file(kernel(), &extable_tool::Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.has_errors(), "{}\n{detail}", report.summary());
    assert_eq!(report.warnings, 0, "{:#?}", report.lines());
    assert!(report.sorted && report.entries > 0, "{}", report.summary());
    assert_eq!(report.marker.as_ref().and_then(|m| m.value), Some(0));
}

#[test]
fn data_abort_decodes_esr_far_and_dispatches_through_fault_info() {
    // A read outside every VMA: DABT from EL0, level-2 translation fault (the L2 entry is
    // empty), WnR clear; a write to the read-only VMA: WnR set. Both end in SIGSEGV.
    passed(
        "aarch64_dabt_decode",
        &[
            "read: SIGSEGV esr=0x92000006 (level 2 translation fault) far=0x300004",
            "write: SIGSEGV esr=0x92000046 (level 2 translation fault) WnR far=0x20000c",
        ],
    );
    console_shows(
        "user[1]: unhandled exception: DABT (lower EL), ESR 0x0000000092000006, level 2 translation fault",
    );
}

#[test]
fn kernel_faults_are_fixed_through_the_table() {
    // Linux's generic copy_from_kernel_nofault_allowed permits NULL and 0x880: the read
    // faults once and the table fixes it.
    passed(
        "nofault_null",
        &["copy_from_kernel_nofault(0x0) = Err(Efault) after 1 fault(s), 1 expected (fixed through the table)"],
    );
    passed(
        "nofault_0x880",
        &["copy_from_kernel_nofault(0x880) = Err(Efault) after 1 fault(s), 1 expected (fixed through the table)"],
    );
    passed(
        "copy_from_user_partial",
        &["1->255 7->249 100->156 255->1 "],
    );
    passed(
        "get_user_kernel_address",
        &["= Err(Efault), 0 faults taken"],
    );
    passed("put_user_kernel_address", &["= Err(Efault), 0 faults"]);
    // Seen from the arm64 fault path: a DABT from EL1h with PAN set in the saved PSTATE, a
    // level-1 translation fault on the empty reserved TTBR0 table, FAR 0.
    passed(
        "aarch64_kernel_fixup_decode",
        &[
            "esr=0x96000005 ec=0x25 fsc=0x05 (level 1 translation fault) far=0x0",
            "nofault(NULL) = Err(Efault)",
        ],
    );
}

#[test]
fn put_user_into_a_read_only_user_page_is_efault() {
    passed(
        "aarch64_put_user_readonly",
        &[
            "put_user = Err(Efault), then get_user = Ok(0)",
            "esr=0x9600004f ec=0x25 fsc=0x0f (level 3 permission fault) WnR far=0x200010",
        ],
    );
}

#[test]
fn uaccess_err_zero_sets_efault_and_zeroes_the_value_register() {
    passed(
        "aarch64_uaccess_err_zero",
        &["bad: err=-14 val=0x0; good: err=0 val=0x77", "far=0x300008"],
    );
}

#[test]
fn pan_faults_a_privileged_load_of_user_memory_and_ldtr_works() {
    passed(
        "aarch64_pan_fixup",
        &[
            "PAN on; plain ldr = Err(fault), ldtr (get_user) = Ok(66)",
            "esr=0x9600000f fsc=0x0f (level 3 permission fault) far=0x105000 pstate.PAN=1",
        ],
    );
}

#[test]
fn kernel_lives_in_ttbr1_and_user_pointers_into_it_are_refused() {
    passed(
        "aarch64_ttbr_split",
        &[
            "kernel text 0xffffff80",
            "TASK_SIZE 0x8000000000",
            "get_user(kernel) = Err(Efault) after 0 faults",
        ],
    );
    passed(
        "user_syscall_write",
        &["write(user buf) exited 0x14, write(kernel ptr) exited 0xfffffffffffffff2"],
    );
    console_shows("user: hello from user mode");
}

#[test]
fn user_page_faults_serve_vmas_and_signal_the_task() {
    passed("user_demand_zero", &["minor faults 1/1/1"]);
    passed("user_stack_growth", &["exited 0x1", "(16384 bytes)"]);
    passed(
        "user_stack_limit",
        &["killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0x7f7000"],
    );
    passed(
        "user_write_readonly",
        &["killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x200008"],
    );
    passed(
        "user_outside_vmas",
        &["killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0x300000"],
    );
    passed(
        "user_kernel_address",
        &["killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0xffffff80"],
    );
    console_shows("SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x200008: killing the task");
}

#[test]
fn unaligned_exclusive_is_sigbus_adraln() {
    passed(
        "aarch64_sigbus_unaligned_exclusive",
        &[
            "killed by SIGBUS (BUS_ADRALN) signal 7 code 1 addr 0x102001",
            "fsc=0x21 (alignment fault)",
        ],
    );
}

#[test]
fn pc_alignment_fault_is_sigbus_adraln() {
    passed(
        "aarch64_pc_alignment",
        &["killed by SIGBUS (BUS_ADRALN) signal 7 code 1 addr 0x10002"],
    );
    console_shows("user[1]: unhandled exception: PC Alignment, ESR 0x000000008a000000, SP/PC alignment exception");
}

#[test]
fn instruction_aborts_on_uxn_pages_are_sigsegv() {
    passed(
        "user_exec_data",
        &["killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x100000"],
    );
    passed(
        "aarch64_iabt_uxn",
        &[
            "killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x104000",
            "esr=0x8200000f ec=0x20 fsc=0x0f (level 3 permission fault) far=0x104000 pc=0x104000",
        ],
    );
}

#[test]
fn undefined_instruction_is_sigill_and_the_mrs_hook_emulates() {
    passed(
        "aarch64_sigill",
        &[
            "killed by SIGILL (ILL_ILLOPC) signal 4 code 1",
            "instr=0x00000007",
        ],
    );
    let d = passed(
        "aarch64_undef_hook_mrs",
        &[
            "instr=0xd5380600",
            "without the hook: killed by SIGILL (ILL_ILLOPC) signal 4 code 1",
        ],
    );
    // The task exited with the value the kernel read from the register at EL1.
    let value = d
        .split("ID_AA64ISAR0_EL1 = ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no register value: {d}"));
    assert!(d.starts_with(&format!("exited {value};")), "{d}");
}

#[test]
fn brk_from_el0_is_sigtrap() {
    passed(
        "aarch64_sigtrap_brk",
        &["killed by SIGTRAP (TRAP_BRKPT) signal 5 code 1"],
    );
}

#[test]
fn warn_reports_and_the_kernel_goes_on() {
    passed(
        "aarch64_warn",
        &["WARN_ON(false) warnings +0, WARN_ON(true) warnings +1, resumed"],
    );
    console_shows("WARNING: CPU: 0 PID: 0 at src/arch/aarch64/scenarios.rs:");
}

/// With two CPUs (the harness's default) the second one comes up through PSCI `CPU_ON`;
/// both are held inside the fixup path at once (each with its own recursion guard), then
/// every CPU takes its ten thousand fixed faults at the same time as the other while the
/// boot CPU cycles a module table the other looks up: no wrong outcome, no recursion report.
#[test]
fn smp_fixups_run_on_two_cpus_at_once() {
    console_shows("aarch64: PSCI CPU_ON (hvc) started 1 secondary CPU(s): 2 online");
    let s = main_boot().expect_smp_fixups(2);
    println!("aarch64 smp_fixups with 2 CPUs: {s:?}");
}

/// With one CPU the kernel starts nobody, and every scenario still passes (`smp_fixups`
/// with `cpus=1`).
#[test]
fn one_cpu_machine_boots_too() {
    all_passed(&common::one_cpu_boot(ARCH));
}

#[test]
fn oops_null_dereference_dies_with_the_failure_status() {
    dedicated("aarch64_oops_null");
}

#[test]
fn oops_paging_request_dies_with_the_failure_status() {
    dedicated("aarch64_oops_paging");
}

#[test]
fn oops_pan_violation_dies_with_the_failure_status() {
    dedicated("aarch64_oops_pan");
}

#[test]
fn oops_kernel_execution_of_user_memory_dies_with_the_failure_status() {
    let b = dedicated("aarch64_oops_exec_user");
    // An instruction abort has no "Data abort info".
    assert!(
        !b.transcript.contains("Data abort info:"),
        "{}",
        b.transcript
    );
}

#[test]
fn oops_bug_dies_with_the_failure_status() {
    dedicated("aarch64_oops_bug");
}

#[test]
fn oops_undefined_instruction_in_the_kernel_dies_with_the_failure_status() {
    dedicated("aarch64_oops_undef");
}

#[test]
fn unexpected_vector_reports_itself_and_dies() {
    dedicated("aarch64_oops_bad_vector");
}
