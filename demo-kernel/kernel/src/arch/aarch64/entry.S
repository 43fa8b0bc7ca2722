// AArch64 boot, exception vectors and entry for the demo kernel, after Linux's
// arch/arm64/kernel/head.S and entry.S: the vector table of 16 entries, kernel_entry /
// kernel_exit saving a whole pt_regs (plus ESR and FAR), the EL1h and EL0 synchronous
// handlers' entry, ret_to_user, and the boot of every CPU (the boot CPU from _start, the
// others from PSCI CPU_ON).
//
// Included with `global_asm!(include_str!(..), options(raw))`: plain GNU assembler syntax.
// The kernel is linked in the upper (TTBR1) half at KIMAGE_VOFFSET + its physical address;
// the boot code runs at the physical address with the MMU off, so until it branches to the
// linked address it uses only pc-relative addressing (adr, adrp, ldr =literal).

	.equ	KIMAGE_VOFFSET, 0xffffff8000000000

// struct Frame (mod.rs): extable_runtime::arch::aarch64::PtRegs (x0..x30, sp, pc, pstate),
// then esr and far.
	.equ	S_LR, 240
	.equ	S_SP, 248
	.equ	S_PC, 256
	.equ	S_PSTATE, 264
	.equ	S_ESR, 272
	.equ	S_FAR, 280
	.equ	FRAME_SIZE, 288
	.equ	PT_REGS_SIZE, 272

	.equ	STACK_SIZE, 0x10000

// MAIR_EL1: attr0 = Device-nGnRnE, attr1 = Normal write-back.
	.equ	MAIR_VALUE, 0xff00
// TCR_EL1: T0SZ = T1SZ = 25 (39-bit VAs, three levels of 4 KiB tables), write-back walks,
// inner shareable, TG0 = 4K, TG1 = 4K, IPS = 40 bits.
	.equ	TCR_VALUE, 0x2b5193519
// SCTLR_EL1: M, C, SA, I, EOS, nTWI, nTWE, TSCXT, EIS, nTLSMD, LSMAOE. SPAN (bit 23) clear:
// every exception taken to EL1 sets PSTATE.PAN.
	.equ	SCTLR_VALUE, 0x3055180d

// ---------------------------------------------------------------------------------------
// Boot.

	.section .text.boot, "ax"
	.globl	_start
	.type	_start, %function
_start:
	// The boot CPU: clear .bss (physical addresses: adrp is pc-relative).
	adrp	x0, __bss_start
	add	x0, x0, :lo12:__bss_start
	adrp	x1, __bss_end
	add	x1, x1, :lo12:__bss_end
1:	cmp	x0, x1
	b.hs	2f
	stp	xzr, xzr, [x0], #16
	b	1b
2:	mov	x19, #0
	b	cpu_setup
	.size	_start, . - _start

// Entry of a secondary CPU started by PSCI CPU_ON: MMU off, x0 = the context id (the CPU
// number the boot CPU gave it).
	.globl	aarch64_secondary_entry
	.type	aarch64_secondary_entry, %function
aarch64_secondary_entry:
	mov	x19, x0
	b	cpu_setup
	.size	aarch64_secondary_entry, . - aarch64_secondary_entry

// Every CPU: FP/SIMD on (the Rust target uses NEON), the boot tables in TTBR0 (identity
// map, for the instructions right after the MMU goes on) and TTBR1 (the kernel's linked
// addresses), the MMU on, then a jump to the linked address. x19 = CPU number.
cpu_setup:
	mov	x0, #(3 << 20)
	msr	cpacr_el1, x0
	isb
	ldr	x0, =MAIR_VALUE
	msr	mair_el1, x0
	ldr	x0, =TCR_VALUE
	msr	tcr_el1, x0
	adrp	x0, aarch64_boot_pgd
	msr	ttbr0_el1, x0
	msr	ttbr1_el1, x0
	isb
	tlbi	vmalle1
	dsb	nsh
	isb
	ldr	x0, =SCTLR_VALUE
	msr	sctlr_el1, x0
	isb
	ic	iallu
	dsb	nsh
	isb
	ldr	x0, =cpu_virt
	br	x0
cpu_virt:
	// Now at the linked (TTBR1) address: this CPU's stack, vectors and per-CPU id.
	ldr	x0, =__stacks_end
	mov	x1, #STACK_SIZE
	msub	x0, x19, x1, x0
	mov	sp, x0
	ldr	x0, =aarch64_vectors
	msr	vbar_el1, x0
	msr	tpidr_el1, x19
	isb
	mov	x29, #0
	mov	x30, #0
	mov	x0, x19
	bl	aarch64_start
3:	wfe
	b	3b
	.ltorg

// The boot page table, shared by TTBR0 and TTBR1 while the MMU goes on, and kept as the
// kernel's TTBR1 table (Linux's swapper_pg_dir): level-1 1 GiB blocks, so VA
// KIMAGE_VOFFSET + PA (and, in TTBR0 at boot only, PA itself) maps PA.
//   [0] 0x00000000: Device-nGnRnE (the PL011 at 0x09000000), PXN, UXN, EL1 only;
//   [1] 0x40000000: RAM, Normal write-back, inner shareable, UXN, EL1 read/write.
	.section .data.pgtable, "aw"
	.balign	4096
	.globl	aarch64_boot_pgd
aarch64_boot_pgd:
	.quad	0x0060000000000401
	.quad	0x0040000040000705
	.fill	510, 8, 0

// ---------------------------------------------------------------------------------------
// Exception entry.

	.text

// kernel_entry el: save the interrupted context as a Frame on the current (SP_EL1) stack.
	.macro	kernel_entry, el
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp, #16 * 0]
	stp	x2, x3, [sp, #16 * 1]
	stp	x4, x5, [sp, #16 * 2]
	stp	x6, x7, [sp, #16 * 3]
	stp	x8, x9, [sp, #16 * 4]
	stp	x10, x11, [sp, #16 * 5]
	stp	x12, x13, [sp, #16 * 6]
	stp	x14, x15, [sp, #16 * 7]
	stp	x16, x17, [sp, #16 * 8]
	stp	x18, x19, [sp, #16 * 9]
	stp	x20, x21, [sp, #16 * 10]
	stp	x22, x23, [sp, #16 * 11]
	stp	x24, x25, [sp, #16 * 12]
	stp	x26, x27, [sp, #16 * 13]
	stp	x28, x29, [sp, #16 * 14]
	.if	\el == 0
	mrs	x21, sp_el0
	.else
	add	x21, sp, #FRAME_SIZE
	.endif
	stp	x30, x21, [sp, #S_LR]
	mrs	x22, elr_el1
	mrs	x23, spsr_el1
	stp	x22, x23, [sp, #S_PC]
	mrs	x24, esr_el1
	mrs	x25, far_el1
	stp	x24, x25, [sp, #S_ESR]
	mov	x29, #0
	.endm

// kernel_exit el: return to the context of the Frame at sp (pc and pstate as the handler
// left them: a fixup rewrites the pc).
	.macro	kernel_exit, el
	ldp	x21, x22, [sp, #S_PC]
	.if	\el == 0
	ldr	x23, [sp, #S_SP]
	msr	sp_el0, x23
	.endif
	msr	elr_el1, x21
	msr	spsr_el1, x22
	ldp	x0, x1, [sp, #16 * 0]
	ldp	x2, x3, [sp, #16 * 1]
	ldp	x4, x5, [sp, #16 * 2]
	ldp	x6, x7, [sp, #16 * 3]
	ldp	x8, x9, [sp, #16 * 4]
	ldp	x10, x11, [sp, #16 * 5]
	ldp	x12, x13, [sp, #16 * 6]
	ldp	x14, x15, [sp, #16 * 7]
	ldp	x16, x17, [sp, #16 * 8]
	ldp	x18, x19, [sp, #16 * 9]
	ldp	x20, x21, [sp, #16 * 10]
	ldp	x22, x23, [sp, #16 * 11]
	ldp	x24, x25, [sp, #16 * 12]
	ldp	x26, x27, [sp, #16 * 13]
	ldp	x28, x29, [sp, #16 * 14]
	ldr	x30, [sp, #S_LR]
	add	sp, sp, #FRAME_SIZE
	eret
	.endm

// An entry of the vector table: 0x80 bytes, a branch to the handler.
	.macro	ventry, label
	.balign	128
	b	\label
	.endm

// The vector table (VBAR_EL1, 2 KiB aligned): synchronous, IRQ, FIQ, SError for EL1t,
// EL1h, EL0 AArch64 and EL0 AArch32.
	.section .text.vectors, "ax"
	.balign	2048
	.globl	aarch64_vectors
aarch64_vectors:
	ventry	el1t_64_sync_invalid
	ventry	el1t_64_irq_invalid
	ventry	el1t_64_fiq_invalid
	ventry	el1t_64_error_invalid
	ventry	el1h_64_sync
	ventry	el1h_64_irq_invalid
	ventry	el1h_64_fiq_invalid
	ventry	el1h_64_error_invalid
	ventry	el0t_64_sync
	ventry	el0t_64_irq_invalid
	ventry	el0t_64_fiq_invalid
	ventry	el0t_64_error_invalid
	ventry	el0t_32_sync_invalid
	ventry	el0t_32_irq_invalid
	ventry	el0t_32_fiq_invalid
	ventry	el0t_32_error_invalid

	.text

// An unexpected vector: save the frame and report it (bad_mode(regs, vector), no return).
	.macro	inv_entry, el, vector, label
\label:
	kernel_entry \el
	mov	x0, sp
	mov	x1, #\vector
	bl	aarch64_bad_mode
	.endm

	inv_entry	1, 0, el1t_64_sync_invalid
	inv_entry	1, 1, el1t_64_irq_invalid
	inv_entry	1, 2, el1t_64_fiq_invalid
	inv_entry	1, 3, el1t_64_error_invalid
	inv_entry	1, 5, el1h_64_irq_invalid
	inv_entry	1, 6, el1h_64_fiq_invalid
	inv_entry	1, 7, el1h_64_error_invalid
	inv_entry	0, 9, el0t_64_irq_invalid
	inv_entry	0, 10, el0t_64_fiq_invalid
	inv_entry	0, 11, el0t_64_error_invalid
	inv_entry	0, 12, el0t_32_sync_invalid
	inv_entry	0, 13, el0t_32_irq_invalid
	inv_entry	0, 14, el0t_32_fiq_invalid
	inv_entry	0, 15, el0t_32_error_invalid

el1h_64_sync:
	kernel_entry 1
	mov	x0, sp
	bl	el1h_64_sync_handler
	kernel_exit 1

el0t_64_sync:
	kernel_entry 0
	mov	x0, sp
	bl	el0t_64_sync_handler
	b	ret_to_user

// Back to EL0 with the frame at sp. A frame whose pstate is not EL0t (AArch64) would
// return to a privileged mode: a kernel bug, reported as an unexpected vector (16).
ret_to_user:
	ldr	x22, [sp, #S_PSTATE]
	tst	x22, #0x1f
	b.ne	1f
	kernel_exit 0
1:	mov	x0, sp
	mov	x1, #16
	bl	aarch64_bad_mode

// usize aarch64_run_user(const PtRegs *regs, usize *ctx)
// Save the callee-saved registers and sp in *ctx, build a frame from *regs below them and
// return to EL0 with it. Control comes back, as a return from this function, when
// aarch64_task_return(ctx, value) is called.
	.globl	aarch64_run_user
	.type	aarch64_run_user, %function
aarch64_run_user:
	stp	x29, x30, [sp, #-96]!
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	mov	x9, sp
	str	x9, [x1]
	sub	sp, sp, #FRAME_SIZE
	mov	x2, sp
	mov	x3, #(PT_REGS_SIZE / 16)
1:	ldp	x4, x5, [x0], #16
	stp	x4, x5, [x2], #16
	subs	x3, x3, #1
	b.ne	1b
	b	ret_to_user
	.size	aarch64_run_user, . - aarch64_run_user

// ! aarch64_task_return(const usize *ctx, usize value)
// Abandon the task's kernel frames and return `value` from the aarch64_run_user that saved
// ctx.
	.globl	aarch64_task_return
	.type	aarch64_task_return, %function
aarch64_task_return:
	ldr	x9, [x0]
	mov	sp, x9
	mov	x0, x1
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x27, x28, [sp, #80]
	ldp	x29, x30, [sp], #96
	ret
	.size	aarch64_task_return, . - aarch64_task_return
