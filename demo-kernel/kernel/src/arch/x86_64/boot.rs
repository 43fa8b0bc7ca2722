//! PVH entry: QEMU's `-kernel` finds the `XEN_ELFNOTE_PHYS32_ENTRY` note, starts
//! `pvh_start32` in 32-bit protected mode with paging off and `ebx` pointing at the
//! `hvm_start_info`. The boot code turns on PAE paging with the static boot tables, enters
//! long mode, jumps to the kernel's link address in the top 2 GiB and calls
//! [`super::x86_64_start`].
//!
//! The boot page tables map the first 1 GiB with 2 MiB pages three times: identity (only
//! until the switch, then removed so that NULL faults), at the direct map
//! [`super::PAGE_OFFSET`] (Linux's `__va`), and at the kernel's link address
//! [`super::KERNEL_VMA`]. `boot_pml4` stays the reference table (init_mm) afterwards.

core::arch::global_asm!(
    r#"
    .set KVMA, 0xffffffff80000000

    .pushsection .note.pvh, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz: a 64-bit entry address */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4
    .popsection

    .pushsection .boot.text, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %edi                        /* hvm_start_info, physical */
    mov $(boot_stack_top - KVMA), %esp
    mov %cr4, %eax
    or $0x20, %eax                        /* CR4.PAE */
    mov %eax, %cr4
    mov $(boot_pml4 - KVMA), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx                 /* EFER */
    rdmsr
    or $0x900, %eax                       /* LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax                  /* PG | WP | PE */
    mov %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x10, $start64_low
    .code64
start64_low:
    movabs $start64, %rax
    jmp *%rax
    .popsection

    .pushsection .boot.data, "aw"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff              /* 0x08: 32-bit code */
    .quad 0x00af9a000000ffff              /* 0x10: 64-bit code */
    .quad 0x00cf92000000ffff              /* 0x18: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
    .popsection

    .pushsection .text.entry, "ax"
start64:
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    lea boot_stack_top(%rip), %rsp
    mov %rdi, %r12
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    mov %r12, %rdi
    call x86_64_start
    ud2
    .popsection

    .pushsection .data.boot_page_tables, "aw"
    .balign 4096
    .globl boot_pml4
boot_pml4:
    .quad boot_pdpt_low - KVMA + 3        /* [0]: identity, removed after boot */
    .fill 272, 8, 0
    .quad boot_pdpt_low - KVMA + 3        /* [273]: direct map, 0xffff888000000000 */
    .fill 237, 8, 0
    .quad boot_pdpt_high - KVMA + 3       /* [511]: the kernel image */
boot_pdpt_low:
    .quad boot_pd - KVMA + 3
    .fill 511, 8, 0
boot_pdpt_high:
    .fill 510, 8, 0
    .quad boot_pd - KVMA + 3              /* [510]: 0xffffffff80000000 */
    .quad 0
boot_pd:
    .set i, 0
    .rept 512
    .quad (i << 21) + 0x83                /* P | RW | PS: 2 MiB */
    .set i, i + 1
    .endr
    .popsection

    .pushsection .bss.boot_stack, "aw", @nobits
    .balign 16
boot_stack:
    .skip 65536
    .globl boot_stack_top
boot_stack_top:
    .popsection
"#,
    options(att_syntax)
);
