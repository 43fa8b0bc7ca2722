//! Boots the x86_64 demo kernel in QEMU and asserts every scenario's outcome.
//!
//! The kernel is built once per run, linked through `extable-link` (rust-lld, then
//! extable-tool sorts and checks its table). The main boot runs every scenario; each
//! dedicated scenario (oops paths, #DF, triple fault, hang) gets a boot of its own.

mod common;

use std::path::Path;

use demo_kernel::{boot, Arch, Boot, BootEnd, KernelExit, ResultLine, Verdict, DEDICATED_TIMEOUT};

const ARCH: Arch = Arch::X86_64;

fn kernel() -> &'static Path {
    common::kernel(ARCH)
}

fn main_boot() -> &'static Boot {
    common::main_boot(ARCH)
}

/// The scenario's line, which must say PASS; its detail must contain every `needle`.
fn pass(scenario: &str, needles: &[&str]) -> ResultLine {
    main_boot().expect_pass(scenario, needles)
}

fn console_has(text: &str) {
    main_boot().expect_console(text);
}

const MAIN_SCENARIOS: &[&str] = &[
    "extable_table",
    "nofault_null",
    "nofault_0x880",
    "copy_from_user_partial",
    "get_user_kernel_address",
    "put_user_kernel_address",
    "user_syscall_write",
    "user_exec_data",
    "user_demand_zero",
    "user_stack_growth",
    "user_stack_limit",
    "user_write_readonly",
    "user_outside_vmas",
    "user_kernel_address",
    "smp_fixups",
    "idtentry_pt_regs",
    "divide_error_fixup",
    "gp_noncanonical_uaccess",
    "warn_ud2",
    "unexpected_vectors",
    "user_noncanonical",
    "vmalloc_fault",
    "vmalloc_fault_miss",
    "smap_uaccess",
    "smap_direct_read",
];

#[test]
fn main_boot_runs_every_scenario_once_and_exits_passed() {
    let b = main_boot();
    let results = b.results();
    for s in MAIN_SCENARIOS {
        b.result(s);
    }
    assert_eq!(results.len(), MAIN_SCENARIOS.len(), "{}", b.transcript);
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
    let done = b.done().expect("DONE line");
    assert_eq!((done.total, done.failed), (MAIN_SCENARIOS.len(), 0));
    assert_eq!(b.end, BootEnd::Kernel(KernelExit::Passed));
    // The time is shown, not asserted (see the boot bench for the measure).
    println!(
        "x86_64 main boot: {:?} wall clock to DONE, kernel clock {} us",
        b.to_done, done.micros
    );
}

#[test]
fn table_is_sorted_and_checked_in_the_link() {
    pass(
        "extable_table",
        &["order=SortedByTool", "marker_sorted=true", "conflicts=0"],
    );
    let opts = extable_tool::Options::default();
    let report = extable_tool::check_file(kernel(), &opts).expect("check");
    assert!(!report.has_errors(), "{:#?}", report.lines());
    // Out-of-line fixup stubs live in .text.fixup, which the tool knows as fixup code.
    assert_eq!(report.warnings, 0, "{:#?}", report.lines());
    let dump = extable_tool::dump_file(kernel(), &opts, false).expect("dump");
    assert_eq!(dump.marker, Some(0), "the tool cleared the marker");
    assert!(dump.entries.len() >= 10, "{}", dump.entries.len());
    let addrs: Vec<u64> = dump.entries.iter().map(|e| e.insn.addr).collect();
    assert!(addrs.windows(2).all(|w| w[0] <= w[1]), "sorted by insn");
    assert!(dump
        .entries
        .iter()
        .any(|e| e.insn.symbol.contains("copy_from_user")));
}

#[test]
fn nofault_null_and_0x880_are_refused_before_any_access() {
    // x86_64 refuses user-range addresses as Linux's x86 copy_from_kernel_nofault_allowed
    // does: no fault is taken.
    pass(
        "nofault_null",
        &["copy_from_kernel_nofault(0x0) = Err(Efault) after 0 fault(s), 0 expected (refused before any access)"],
    );
    pass(
        "nofault_0x880",
        &["copy_from_kernel_nofault(0x880) = Err(Efault) after 0 fault(s), 0 expected (refused before any access)"],
    );
}

#[test]
fn copy_from_user_returns_the_exact_remainder() {
    pass(
        "copy_from_user_partial",
        &["1->255 7->249 100->156 255->1 "],
    );
}

#[test]
fn get_and_put_user_refuse_kernel_addresses_before_any_access() {
    pass(
        "get_user_kernel_address",
        &["= Err(Efault), 0 faults taken"],
    );
    pass(
        "put_user_kernel_address",
        &["Err(Efault), 0 faults, word still 0x1122334455667788"],
    );
}

#[test]
fn syscall_from_ring3_copies_user_memory_and_refuses_kernel_pointers() {
    pass(
        "user_syscall_write",
        &[
            "write(user buf) exited 0x14",
            "write(kernel ptr) exited 0xfffffffffffffff2",
        ],
    );
    console_has("user: hello from user mode");
}

#[test]
fn demand_zero_page_is_a_minor_fault() {
    pass(
        "user_demand_zero",
        &[
            "read exited 0x0, write exited 0x5a, reread exited 0x5a",
            "minor faults 1/1/1",
        ],
    );
}

#[test]
fn stack_grows_down_to_its_limit() {
    pass(
        "user_stack_growth",
        &["exited 0x1", "stack VMA now starts at 0x7fffffffa000"],
    );
    pass(
        "user_stack_limit",
        &["killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0x7ffffffee000"],
    );
}

#[test]
fn user_faults_become_signals_and_the_kernel_goes_on() {
    pass(
        "user_write_readonly",
        &["killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x700008"],
    );
    pass(
        "user_outside_vmas",
        &["killed by SIGSEGV (SEGV_MAPERR) signal 11 code 1 addr 0x900000"],
    );
    pass(
        "user_kernel_address",
        &["killed by SIGSEGV (SEGV_", ") signal 11 code "],
    );
    pass(
        "user_exec_data",
        &["killed by SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x600000"],
    );
    pass("user_noncanonical", &["signo: 11, code: 128"]);
    console_has("demo[1]: segfault at 700008 ip");
    console_has("SIGSEGV (SEGV_ACCERR) signal 11 code 2 addr 0x700008: killing the task");
}

#[test]
fn idtentry_saves_and_restores_a_whole_pt_regs() {
    pass(
        "idtentry_pt_regs",
        &["saved r12..r15 = [1212, 1313, 1414, 1515]; rsi after iretq = 0x5eed"],
    );
}

#[test]
fn divide_error_is_fixed_through_the_table() {
    pass(
        "divide_error_fixup",
        &["#DE taken 1 time(s), resumed at the fixup with rax = trap 0"],
    );
}

#[test]
fn gp_from_noncanonical_user_access_is_fixed_with_a_warning() {
    pass(
        "gp_noncanonical_uaccess",
        &["Err(Efault); #GP taken 1, warnings 1"],
    );
    console_has("WARNING: General protection fault in user access. Non-canonical address?");
}

#[test]
fn ud2_warn_is_found_in_the_bug_table() {
    pass("warn_ud2", &["WARN reported 1 time(s)"]);
    console_has("WARNING: CPU: 0 at src/arch/x86_64/scenarios.rs:");
}

#[test]
fn unexpected_vectors_report_themselves() {
    pass(
        "unexpected_vectors",
        &["2 reported: vector 3 then vector 0x41"],
    );
    // No error code from the CPU: the stub pushed -1 into orig_ax.
    console_has("unexpected exception 3 (error code 0xffffffffffffffff)");
    console_has("unexpected vector 65 (spurious interrupt)");
}

#[test]
fn vmalloc_fault_copies_the_top_level_entry_once() {
    pass(
        "vmalloc_fault",
        &[
            "1st read Ok(76616c6c6f632121) with 1 fault(s), 1 top-level copy",
            "2nd read Ok(0) with 0 fault(s)",
        ],
    );
    pass(
        "vmalloc_fault_miss",
        &["Err(Efault); vmalloc_fault saw", "copied nothing"],
    );
}

#[test]
fn smap_brackets_uaccess_and_catches_direct_reads() {
    pass(
        "smap_uaccess",
        &["copy_from_user left 0 read \"smap\", SMAP violations 0"],
    );
    pass(
        "smap_direct_read",
        &["Err(Efault), SMAP violations reported", "error code 0x1"],
    );
    console_has("SMEP on, SMAP on");
    console_has("SMAP violation: kernel read of user address 0x600000");
}

/// Boot a dedicated scenario and check it ended as the harness's table says.
fn dedicated(name: &str) -> Boot {
    common::dedicated(ARCH, name)
}

fn oops(name: &str, extra: &[&str]) {
    let b = dedicated(name);
    assert_eq!(b.end, BootEnd::Kernel(KernelExit::Oops));
    assert_eq!(b.result(name).verdict, Verdict::Oops);
    assert!(b.done().is_none(), "an oops never reaches DONE");
    for e in extra {
        assert!(b.transcript.contains(e), "lacks {e:?}\n{}", b.transcript);
    }
}

#[test]
fn oops_null_prints_bug_with_error_code_and_rip_and_fails() {
    oops(
        "oops_null",
        &[
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "#PF: decoded: P=0 W/R=0 U/S=0 RSVD=0 I/D=0 PK=0 SS=0",
            "RIP: 0010:ffffffff8",
            "CR2: 0000000000000000",
        ],
    );
}

#[test]
fn vmalloc_address_missing_from_the_reference_oopses() {
    oops(
        "oops_vmalloc",
        &["BUG: unable to handle page fault for address: ffffc98000000000"],
    );
}

#[test]
fn smap_direct_read_without_fixup_oopses() {
    oops(
        "oops_smap",
        &["#PF: decoded: P=1 W/R=0 U/S=0 RSVD=0 I/D=0 PK=0 SS=0"],
    );
}

#[test]
fn smep_kernel_execution_of_user_page_oopses() {
    oops(
        "oops_smep",
        &["#PF: decoded: P=1 W/R=0 U/S=0 RSVD=0 I/D=1 PK=0 SS=0"],
    );
}

#[test]
fn double_fault_runs_on_the_ist_stack() {
    oops("double_fault", &["on the IST stack"]);
}

#[test]
fn ud2_bug_is_found_in_the_bug_table_and_oopses() {
    oops("bug_ud2", &["kernel BUG at src/arch/x86_64/scenarios.rs:"]);
}

#[test]
fn triple_fault_is_never_read_as_success() {
    let b = dedicated("triple_fault");
    assert_eq!(b.end, BootEnd::ResetOrTripleFault);
    assert!(b.results().is_empty() && b.done().is_none());
}

#[test]
fn a_hung_boot_is_killed_by_the_timeout() {
    let b = dedicated("hang");
    assert_eq!(b.end, BootEnd::Timeout);
    assert!(b.wall >= DEDICATED_TIMEOUT);
}

#[test]
fn an_unknown_scenario_fails_the_boot() {
    let b = boot(ARCH, kernel(), "scenario=no_such_thing", DEDICATED_TIMEOUT).unwrap();
    assert_eq!(b.end, BootEnd::Kernel(KernelExit::Failed));
    assert_eq!(b.result("no_such_thing").verdict, Verdict::Fail);
}

/// With two CPUs (the harness's default) the second one is started, and every CPU takes
/// its ten thousand fixed faults at the same time as the other, through its own recursion
/// guard, while the boot CPU cycles a module table the other looks up: no wrong outcome, no
/// recursion report.
#[test]
fn smp_fixups_run_on_two_cpus_at_once() {
    main_boot().expect_console("x86_64: MADT lists 2 CPUs; INIT-SIPI-SIPI through the ");
    main_boot().expect_console("trampoline at 0x8000: 2 online");
    let s = main_boot().expect_smp_fixups(2);
    println!("x86_64 smp_fixups with 2 CPUs: {s:?}");
}

/// With one CPU the kernel starts nobody, and every scenario still passes (`smp_fixups`
/// with `cpus=1`).
#[test]
fn one_cpu_boot_still_passes_every_scenario() {
    common::one_cpu_boot(ARCH);
}
