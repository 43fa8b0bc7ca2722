//! The macros on real faults: `extable_runtime::asm!` in each fixup mode, `#[extable]`,
//! `#[handler]`, label hygiene, AT&T syntax, explicit registers. Runs natively on x86_64 and
//! under qemu-user on ARMv7 (A32; T32 with thumbv7neon) and AArch64.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "arm", target_arch = "aarch64")
))]

use std::sync::atomic::{AtomicUsize, Ordering};

use extable_runtime::entry::ExceptionTableEntry;
use extable_runtime::{extable, handler, ExRegs, Fault, FaultKind, Trap};

mod common;
use common::{map, protect, setup, PAGE};

/// One page with `prot`, holding `0x5a5a` in its first word, then a PROT_NONE guard page.
fn page(prot: libc::c_int) -> usize {
    let p = map(2 * PAGE);
    // SAFETY: the fresh mapping is read-write and no Rust reference covers it.
    unsafe { (p as *mut usize).write_volatile(0x5a5a) };
    protect(p, PAGE, prot);
    protect(p + PAGE, PAGE, libc::PROT_NONE);
    p
}

/// Record mode: `[ex]` without a `fixup` label; the block is `Result<(), Fault>`.
fn load_word(addr: usize) -> Result<usize, Fault> {
    let value: usize;
    // SAFETY: the load is marked; a fault is fixed and reported as `Err`.
    #[cfg(target_arch = "x86_64")]
    let r = unsafe {
        extable_runtime::asm!(
            "[ex] mov {v}, qword ptr [{p}]",
            p = in(reg) addr,
            v = out(reg) value,
            options(nostack),
        )
    };
    // SAFETY: as above.
    #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
    let r = unsafe {
        extable_runtime::asm!(
            "[ex] ldr {v}, [{p}]",
            p = in(reg) addr,
            v = out(reg) value,
            options(nostack),
        )
    };
    r.map(|()| value)
}

#[test]
fn a_recorded_fault_carries_the_trap_and_the_address() {
    setup();
    let none = page(libc::PROT_NONE);
    let fault = load_word(none + 8).expect_err("PROT_NONE must fault");
    assert_eq!(fault.address(), Some(none + 8));
    let trap = fault.trap().expect("the default handler records the trap");
    assert_eq!(trap.nr, libc::SIGSEGV as u32);
    assert!(matches!(
        trap.kind,
        FaultKind::Permission | FaultKind::NotMapped
    ));
    let null = load_word(0).expect_err("NULL must fault");
    assert_eq!(null.address(), Some(0));
    assert_eq!(null.trap().map(|t| t.kind), Some(FaultKind::NotMapped));
}

#[test]
fn a_loaded_value_is_never_taken_for_an_error() {
    setup();
    let rw = page(libc::PROT_READ | libc::PROT_WRITE);
    assert_eq!(load_word(rw), Ok(0x5a5a));
    for v in [0usize, usize::MAX, -14isize as usize, 1] {
        // SAFETY: the page is ours and readable and writable; no reference covers it.
        unsafe { (rw as *mut usize).write_volatile(v) };
        assert_eq!(load_word(rw), Ok(v));
    }
}

/// Label mode: `fixup = label { ... }` (asm goto; no outputs).
fn store_word(addr: usize, value: usize) -> bool {
    // SAFETY: the store is marked; its fixup is the label block.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        extable_runtime::asm!(
            "[ex] mov qword ptr [{p}], {v}",
            p = in(reg) addr,
            v = in(reg) value,
            fixup = label { return false },
            options(nostack),
        );
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        extable_runtime::asm!(
            "[ex] str {v}, [{p}]",
            p = in(reg) addr,
            v = in(reg) value,
            fixup = label { return false },
            options(nostack),
        );
    }
    true
}

#[test]
fn a_fixup_label_block_runs_on_a_fault_only() {
    setup();
    let rw = page(libc::PROT_READ | libc::PROT_WRITE);
    let ro = page(libc::PROT_READ);
    assert!(store_word(rw, 77));
    assert_eq!(load_word(rw), Ok(77));
    assert!(!store_word(ro, 77));
    assert_eq!(load_word(ro), Ok(0x5a5a), "the failed store wrote nothing");
}

/// Explicit targets: `[ex => 3f]` resumes at the template's own label.
fn load_or_flag(addr: usize) -> (usize, usize) {
    let (ok, value): (usize, usize);
    // SAFETY: the load is marked; its fixup is label 3 of this block.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        extable_runtime::asm!(
            "mov {ok}, 1",
            "xor {v:e}, {v:e}",
            "[ex => 3f] mov {v}, qword ptr [{p}]",
            "jmp 4f",
            "3:",
            "mov {ok}, 0",
            "4:",
            p = in(reg) addr,
            ok = out(reg) ok,
            v = out(reg) value,
            options(nostack),
        );
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        extable_runtime::asm!(
            "mov {ok}, #1",
            "mov {v}, #0",
            "[ex => 3f] ldr {v}, [{p}]",
            "b 4f",
            "3:",
            "mov {ok}, #0",
            "4:",
            p = in(reg) addr,
            ok = out(reg) ok,
            v = out(reg) value,
            options(nostack),
        );
    }
    (ok, value)
}

#[test]
fn an_explicit_target_resumes_at_the_templates_label() {
    setup();
    assert_eq!(load_or_flag(page(libc::PROT_READ)), (1, 0x5a5a));
    assert_eq!(load_or_flag(page(libc::PROT_NONE)).0, 0);
}

/// `[ex => {retry}]`: the target is an operand, here a `label` not named `fixup`.
fn probe_with_named_label(addr: usize) -> bool {
    // SAFETY: the load is marked; its fixup is the `retry` label block.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        extable_runtime::asm!(
            "[ex => {missing}] mov {t}, qword ptr [{p}]",
            p = in(reg) addr,
            t = out(reg) _,
            missing = label { return false },
            options(nostack),
        );
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        extable_runtime::asm!(
            "[ex => {missing}] ldr {t}, [{p}]",
            p = in(reg) addr,
            t = out(reg) _,
            missing = label { return false },
            options(nostack),
        );
    }
    true
}

#[test]
fn a_placeholder_target_names_a_label_operand() {
    setup();
    assert!(probe_with_named_label(page(libc::PROT_READ)));
    assert!(!probe_with_named_label(page(libc::PROT_NONE)));
}

static COUNTED: AtomicUsize = AtomicUsize::new(0);

/// A custom handler, its signature checked by `#[handler]`.
#[handler]
fn counting(entry: &ExceptionTableEntry, regs: &mut dyn ExRegs, trap: &Trap) -> bool {
    COUNTED.fetch_add(1, Ordering::SeqCst);
    extable_runtime::handlers::default(entry, regs, trap)
}

fn load_counted(addr: usize) -> Result<usize, Fault> {
    let value: usize;
    // SAFETY: the load is marked; the custom handler resumes at the stub.
    #[cfg(target_arch = "x86_64")]
    let r = unsafe {
        extable_runtime::asm!(
            "[ex] mov {v}, qword ptr [{p}]",
            p = in(reg) addr,
            v = out(reg) value,
            handler = counting,
            options(nostack),
        )
    };
    // SAFETY: as above.
    #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
    let r = unsafe {
        extable_runtime::asm!(
            "[ex] ldr {v}, [{p}]",
            p = in(reg) addr,
            v = out(reg) value,
            handler = counting,
            options(nostack),
        )
    };
    r.map(|()| value)
}

#[test]
fn a_custom_handler_runs_and_the_stub_still_flags_the_fault() {
    setup();
    let before = COUNTED.load(Ordering::SeqCst);
    let fault = load_counted(page(libc::PROT_NONE)).expect_err("must fault");
    assert_eq!(fault.trap(), None, "a custom handler records no trap");
    assert_eq!(COUNTED.load(Ordering::SeqCst), before + 1);
    assert_eq!(load_counted(page(libc::PROT_READ)), Ok(0x5a5a));
    assert_eq!(COUNTED.load(Ordering::SeqCst), before + 1);
}

/// The built-in `fault` handler puts the trap number (the signal, hosted) in the return
/// register.
fn trap_number_of_load(addr: usize) -> usize {
    let ret: usize;
    // SAFETY: the load is marked; its fixup is label 3; the handler writes rax/r0/x0.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        extable_runtime::asm!(
            "[ex => 3f] mov {t}, qword ptr [{p}]",
            "3:",
            p = in(reg) addr,
            t = out(reg) _,
            inout("rax") 0usize => ret,
            handler = fault,
            options(nostack),
        );
        #[cfg(target_arch = "arm")]
        extable_runtime::asm!(
            "[ex => 3f] ldr {t}, [{p}]",
            "3:",
            p = in(reg) addr,
            t = out(reg) _,
            inout("r0") 0usize => ret,
            handler = fault,
            options(nostack),
        );
        #[cfg(target_arch = "aarch64")]
        extable_runtime::asm!(
            "[ex => 3f] ldr {t}, [{p}]",
            "3:",
            p = in(reg) addr,
            t = out(reg) _,
            inout("x0") 0usize => ret,
            handler = fault,
            options(nostack),
        );
    }
    ret
}

#[test]
fn built_in_handlers_are_named_by_one_word() {
    setup();
    assert_eq!(
        trap_number_of_load(page(libc::PROT_NONE)),
        libc::SIGSEGV as usize
    );
    assert_eq!(trap_number_of_load(page(libc::PROT_READ)), 0);
}

/// An error type of the user's, built from the fault.
#[derive(Debug, PartialEq, Eq)]
struct BadAddress(Option<usize>);

impl From<Fault> for BadAddress {
    fn from(f: Fault) -> Self {
        BadAddress(f.address())
    }
}

/// `#[extable]` with a `Result` return: a fault returns `Err(BadAddress::from(fault))`.
#[extable]
fn read_twice(a: usize, b: usize) -> Result<(usize, usize), BadAddress> {
    let (x, y): (usize, usize);
    // SAFETY: both loads are marked; a fault returns from the function.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!(
            "[ex] mov {x}, qword ptr [{a}]",
            "[ex] mov {y}, qword ptr [{b}]",
            a = in(reg) a, b = in(reg) b, x = out(reg) x, y = out(reg) y,
            options(nostack),
        );
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        core::arch::asm!(
            "[ex] ldr {x}, [{a}]",
            "[ex] ldr {y}, [{b}]",
            a = in(reg) a, b = in(reg) b, x = out(reg) x, y = out(reg) y,
            options(nostack),
        );
    }
    Ok((x, y))
}

#[test]
fn extable_functions_return_the_fault_as_their_error() {
    setup();
    let ro = page(libc::PROT_READ);
    let none = page(libc::PROT_NONE);
    assert_eq!(read_twice(ro, ro), Ok((0x5a5a, 0x5a5a)));
    assert_eq!(read_twice(none, ro), Err(BadAddress(Some(none))));
    assert_eq!(read_twice(ro, none + 16), Err(BadAddress(Some(none + 16))));
}

/// `#[extable]` with an `Option` return.
#[extable]
fn try_read(a: usize) -> Option<usize> {
    let x: usize;
    // SAFETY: the load is marked; a fault returns `None`.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        std::arch::asm!("[ex] mov {x}, qword ptr [{a}]", a = in(reg) a, x = out(reg) x);
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        std::arch::asm!("[ex] ldr {x}, [{a}]", a = in(reg) a, x = out(reg) x);
    }
    Some(x)
}

#[test]
fn extable_functions_returning_option_return_none() {
    setup();
    assert_eq!(try_read(page(libc::PROT_READ)), Some(0x5a5a));
    assert_eq!(try_read(page(libc::PROT_NONE)), None);
}

/// `#[extable(on_fault = left)]`: a byte copy that returns the bytes not copied, held in
/// the loop counter, which keeps its value at the faulting instruction.
#[extable(on_fault = left)]
fn byte_copy(dst: usize, src: usize, n: usize) -> usize {
    let left: usize;
    // SAFETY: both accesses are marked; a fault returns `left` from the function.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!(
            "2:",
            "test {n}, {n}",
            "jz 3f",
            "[ex] movzx {t:e}, byte ptr [{s}]",
            "[ex] mov byte ptr [{d}], {t:l}",
            "inc {s}",
            "inc {d}",
            "dec {n}",
            "jmp 2b",
            "3:",
            n = inout(reg) n => left, s = inout(reg) src => _, d = inout(reg) dst => _,
            t = out(reg_abcd) _,
            options(nostack),
        );
        #[cfg(target_arch = "arm")]
        core::arch::asm!(
            "2:",
            "cmp {n}, #0",
            "beq 3f",
            "[ex] ldrb {t}, [{s}]",
            "[ex] strb {t}, [{d}]",
            "add {s}, {s}, #1",
            "add {d}, {d}, #1",
            "sub {n}, {n}, #1",
            "b 2b",
            "3:",
            n = inout(reg) n => left, s = inout(reg) src => _, d = inout(reg) dst => _,
            t = out(reg) _,
            options(nostack),
        );
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!(
            "2:",
            "cbz {n}, 3f",
            "[ex] ldrb {t:w}, [{s}]",
            "[ex] strb {t:w}, [{d}]",
            "add {s}, {s}, #1",
            "add {d}, {d}, #1",
            "sub {n}, {n}, #1",
            "b 2b",
            "3:",
            n = inout(reg) n => left, s = inout(reg) src => _, d = inout(reg) dst => _,
            t = out(reg) _,
            options(nostack),
        );
    }
    left
}

#[test]
fn extable_on_fault_returns_the_exact_bytes_not_copied() {
    setup();
    let ro = page(libc::PROT_READ);
    let guard = ro + PAGE;
    let mut dst = vec![0u8; 64];
    for k in 0..=24 {
        for len in 0..=40 {
            let left = byte_copy(dst.as_mut_ptr() as usize, guard - k, len);
            assert_eq!(left, len - len.min(k), "k={k} len={len}");
        }
    }
    assert_eq!(byte_copy(dst.as_mut_ptr() as usize, ro, 8), 0);
    assert_eq!(dst[0], 0x5a);
}

/// User labels with the very numbers the macro would try first, and Intel-syntax labels
/// made of other digits: the macro's labels avoid them.
#[cfg(target_arch = "x86_64")]
fn load_with_own_labels(addr: usize) -> Result<usize, Fault> {
    let value: usize;
    // SAFETY: the load is marked.
    unsafe {
        extable_runtime::asm!(
            "jmp 79770000f",
            "79770000:",
            "[ex] mov {v}, qword ptr [{p}]",
            "jmp 79770001f",
            "79770001:",
            "jmp 79770002f",
            "79770002:",
            p = in(reg) addr,
            v = out(reg) value,
            options(nostack),
        )
    }
    .map(|()| value)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_macros_labels_never_collide_with_the_users() {
    setup();
    assert_eq!(load_with_own_labels(page(libc::PROT_READ)), Ok(0x5a5a));
    let none = page(libc::PROT_NONE);
    assert_eq!(
        load_with_own_labels(none).map_err(|f| f.address()),
        Err(Some(none))
    );
}

/// AT&T syntax: the stub is written in AT&T too.
#[cfg(target_arch = "x86_64")]
fn load_att(addr: usize) -> Result<usize, Fault> {
    let value: usize;
    // SAFETY: the load is marked.
    unsafe {
        extable_runtime::asm!(
            "[ex] movq ({p}), {v}",
            p = in(reg) addr,
            v = out(reg) value,
            options(att_syntax, nostack),
        )
    }
    .map(|()| value)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn att_syntax_blocks_work() {
    setup();
    assert_eq!(load_att(page(libc::PROT_READ)), Ok(0x5a5a));
    let none = page(libc::PROT_NONE);
    assert_eq!(load_att(none).map_err(|f| f.address()), Err(Some(none)));
}

/// The user names r12 (the first record register) and clobbers the C ABI: the record
/// travels in another callee-saved register.
#[cfg(target_arch = "x86_64")]
fn load_with_r12(addr: usize) -> Result<usize, Fault> {
    let value: usize;
    // SAFETY: the load is marked; r12 is an input the block leaves alone.
    unsafe {
        extable_runtime::asm!(
            "[ex] mov rax, qword ptr [r12]",
            in("r12") addr,
            out("rax") value,
            clobber_abi("C"),
        )
    }
    .map(|()| value)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn explicit_registers_and_clobber_abi_leave_the_record_register_alone() {
    setup();
    assert_eq!(load_with_r12(page(libc::PROT_READ)), Ok(0x5a5a));
    let none = page(libc::PROT_NONE);
    assert_eq!(
        load_with_r12(none).map_err(|f| f.address()),
        Err(Some(none))
    );
}

/// A fault in a block that the compiler inlines into a loop many times over: every copy of
/// the block has its own entry (or an identical duplicate) and recovers.
#[test]
fn inlined_and_duplicated_blocks_all_recover() {
    setup();
    let none = page(libc::PROT_NONE);
    let ro = page(libc::PROT_READ);
    let mut faults = 0;
    for i in 0..64 {
        let a = if i % 3 == 0 { none + 8 * i } else { ro };
        match load_word(a) {
            Ok(v) => assert_eq!(v, 0x5a5a),
            Err(f) => {
                assert_eq!(f.address(), Some(a));
                faults += 1;
            }
        }
    }
    assert_eq!(faults, 22);
}

/// Values live across a faulting block whose handler writes registers the block does not
/// mention: `efault::<1, 0>` (rcx and rax; r1 and r0; x1 and x0) and `fault` (the return
/// register). The macro declares them as clobbers, so the compiler keeps nothing there.
#[inline(never)]
fn live_values_across_handler_writes(addr: usize, seed: usize) -> [usize; 12] {
    let live: [usize; 12] =
        core::array::from_fn(|i| std::hint::black_box(seed.wrapping_mul(i + 3) ^ (i << 7)));
    // SAFETY: the loads are marked; their fixups are label 3 in each block.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        extable_runtime::asm!(
            "[ex => 3f] mov {t}, qword ptr [{p}]",
            "3:",
            p = in(reg) addr,
            t = out(reg) _,
            handler = efault::<1, 0>,
        );
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        extable_runtime::asm!(
            "[ex => 3f] ldr {t}, [{p}]",
            "3:",
            p = in(reg) addr,
            t = out(reg) _,
            handler = efault::<1, 0>,
        );
        #[cfg(target_arch = "x86_64")]
        extable_runtime::asm!(
            "[ex => 3f] mov {t}, qword ptr [{p}]",
            "3:",
            p = in(reg) addr,
            t = out(reg) _,
            handler = fault,
        );
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        extable_runtime::asm!(
            "[ex => 3f] ldr {t}, [{p}]",
            "3:",
            p = in(reg) addr,
            t = out(reg) _,
            handler = fault,
        );
    }
    live
}

#[test]
fn registers_a_built_in_handler_writes_are_declared_by_the_macro() {
    setup();
    let bad = page(libc::PROT_NONE);
    for seed in [1usize, 0x1234_5678, usize::MAX / 3] {
        let want: [usize; 12] = core::array::from_fn(|i| seed.wrapping_mul(i + 3) ^ (i << 7));
        assert_eq!(live_values_across_handler_writes(bad, seed), want);
    }
}
