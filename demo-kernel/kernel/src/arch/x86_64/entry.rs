//! The IDT entry stubs, built the way Linux's `idtentry` macro builds them (seed 000):
//! one stub per vector; `ASM_CLAC`; `cld`; `pushq $-1` where the CPU pushes no error code;
//! `idtentry_body` saves every general register so that the stack holds a whole `pt_regs`
//! ([`extable_runtime::arch::x86_64::PtRegs`]), calls the Rust handler with
//! `(regs, error_code, vector)`, restores the registers (as the handler may have rewritten
//! them, the fixup's `regs->ip` included) and returns with `iretq`.
//!
//! Vectors 32..=255 use Linux's `irq_entries_start` layout instead: 8-byte stubs that push the
//! vector into the error-code slot and jump to one common entry.

core::arch::global_asm!(
    r#"
    .macro ASM_CLAC
    testb $1, smap_enabled(%rip)
    jz 2f
    clac
2:
    .endm

    .macro idtentry_body cfunc, vector
    pushq %rdi
    pushq %rsi
    pushq %rdx
    pushq %rcx
    pushq %rax
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    mov %rsp, %rdi                  /* struct pt_regs * */
    mov 15*8(%rsp), %rsi            /* error code: the orig_ax slot */
    mov $\vector, %edx
    mov %rsp, %rbx                  /* callee-saved: survives the call */
    and $-16, %rsp                  /* the Rust ABI wants a 16-byte aligned stack */
    call \cfunc
    mov %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rax
    popq %rcx
    popq %rdx
    popq %rsi
    popq %rdi
    add $8, %rsp                    /* orig_ax */
    iretq
    .endm

    .macro idtentry vector, asmsym, cfunc, has_error_code
    .balign 16
    .globl \asmsym
\asmsym:
    ASM_CLAC
    cld
    .if \has_error_code == 0
    pushq $-1                       /* orig_ax: no error code */
    .endif
    idtentry_body \cfunc, \vector
    .endm

    .pushsection .text.entry, "ax"
    idtentry 0,  asm_exc_divide_error,        exc_divide_error,       0
    idtentry 1,  asm_exc_debug,               exc_unexpected,         0
    idtentry 2,  asm_exc_nmi,                 exc_unexpected,         0
    idtentry 3,  asm_exc_int3,                exc_unexpected,         0
    idtentry 4,  asm_exc_overflow,            exc_unexpected,         0
    idtentry 5,  asm_exc_bounds,              exc_unexpected,         0
    idtentry 6,  asm_exc_invalid_op,          exc_invalid_op,         0
    idtentry 7,  asm_exc_device_not_available, exc_unexpected,        0
    idtentry 8,  asm_exc_double_fault,        exc_double_fault,       1
    idtentry 9,  asm_exc_coproc_segment_overrun, exc_unexpected,      0
    idtentry 10, asm_exc_invalid_tss,         exc_unexpected,         1
    idtentry 11, asm_exc_segment_not_present, exc_unexpected,         1
    idtentry 12, asm_exc_stack_segment,       exc_unexpected,         1
    idtentry 13, asm_exc_general_protection,  exc_general_protection, 1
    idtentry 14, asm_exc_page_fault,          exc_page_fault,         1
    idtentry 15, asm_exc_spurious_15,         exc_unexpected,         0
    idtentry 16, asm_exc_coprocessor_error,   exc_unexpected,         0
    idtentry 17, asm_exc_alignment_check,     exc_unexpected,         1
    idtentry 18, asm_exc_machine_check,       exc_unexpected,         0
    idtentry 19, asm_exc_simd_coprocessor_error, exc_unexpected,      0
    idtentry 20, asm_exc_virtualization,      exc_unexpected,         0
    idtentry 21, asm_exc_control_protection,  exc_unexpected,         1
    idtentry 22, asm_exc_reserved_22,         exc_unexpected,         0
    idtentry 23, asm_exc_reserved_23,         exc_unexpected,         0
    idtentry 24, asm_exc_reserved_24,         exc_unexpected,         0
    idtentry 25, asm_exc_reserved_25,         exc_unexpected,         0
    idtentry 26, asm_exc_reserved_26,         exc_unexpected,         0
    idtentry 27, asm_exc_reserved_27,         exc_unexpected,         0
    idtentry 28, asm_exc_hypervisor_injection, exc_unexpected,        0
    idtentry 29, asm_exc_vmm_communication,   exc_unexpected,         1
    idtentry 30, asm_exc_security,            exc_unexpected,         1
    idtentry 31, asm_exc_reserved_31,         exc_unexpected,         0
    idtentry 0x80, asm_int80_syscall,         do_int80_syscall,       0

    /* Vectors 32..255: push the vector (as Linux's irq_entries_start), then one entry. */
    .balign 16
    .globl irq_entries_start
irq_entries_start:
    .set vector, 32
    .rept 224
    .byte 0x6a, vector              /* pushq $vector (sign-extended imm8) */
    jmp asm_common_spurious
    .balign 8, 0xcc
    .set vector, vector + 1
    .endr
    idtentry 0xff, asm_common_spurious, exc_spurious, 1
    .popsection
"#,
    options(att_syntax)
);

extern "C" {
    fn asm_exc_divide_error();
    fn asm_exc_debug();
    fn asm_exc_nmi();
    fn asm_exc_int3();
    fn asm_exc_overflow();
    fn asm_exc_bounds();
    fn asm_exc_invalid_op();
    fn asm_exc_device_not_available();
    fn asm_exc_double_fault();
    fn asm_exc_coproc_segment_overrun();
    fn asm_exc_invalid_tss();
    fn asm_exc_segment_not_present();
    fn asm_exc_stack_segment();
    fn asm_exc_general_protection();
    fn asm_exc_page_fault();
    fn asm_exc_spurious_15();
    fn asm_exc_coprocessor_error();
    fn asm_exc_alignment_check();
    fn asm_exc_machine_check();
    fn asm_exc_simd_coprocessor_error();
    fn asm_exc_virtualization();
    fn asm_exc_control_protection();
    fn asm_exc_reserved_22();
    fn asm_exc_reserved_23();
    fn asm_exc_reserved_24();
    fn asm_exc_reserved_25();
    fn asm_exc_reserved_26();
    fn asm_exc_reserved_27();
    fn asm_exc_hypervisor_injection();
    fn asm_exc_vmm_communication();
    fn asm_exc_security();
    fn asm_exc_reserved_31();
    fn asm_int80_syscall();
    fn irq_entries_start();
}

/// The stubs of vectors 0..=31, in vector order.
pub fn exception_stubs() -> [unsafe extern "C" fn(); 32] {
    [
        asm_exc_divide_error,
        asm_exc_debug,
        asm_exc_nmi,
        asm_exc_int3,
        asm_exc_overflow,
        asm_exc_bounds,
        asm_exc_invalid_op,
        asm_exc_device_not_available,
        asm_exc_double_fault,
        asm_exc_coproc_segment_overrun,
        asm_exc_invalid_tss,
        asm_exc_segment_not_present,
        asm_exc_stack_segment,
        asm_exc_general_protection,
        asm_exc_page_fault,
        asm_exc_spurious_15,
        asm_exc_coprocessor_error,
        asm_exc_alignment_check,
        asm_exc_machine_check,
        asm_exc_simd_coprocessor_error,
        asm_exc_virtualization,
        asm_exc_control_protection,
        asm_exc_reserved_22,
        asm_exc_reserved_23,
        asm_exc_reserved_24,
        asm_exc_reserved_25,
        asm_exc_reserved_26,
        asm_exc_reserved_27,
        asm_exc_hypervisor_injection,
        asm_exc_vmm_communication,
        asm_exc_security,
        asm_exc_reserved_31,
    ]
}

/// The stub of an external vector (32..=255): 8 bytes each from `irq_entries_start`.
pub fn irq_stub(vector: usize) -> usize {
    irq_entries_start as *const () as usize + (vector - 32) * 8
}

/// The `int 0x80` system-call stub.
pub fn int80_stub() -> usize {
    asm_int80_syscall as *const () as usize
}
