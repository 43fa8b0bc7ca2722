@ ARMv7-A exception entry for the demo kernel, after Linux's arch/arm/kernel/entry-armv.S
@ (seed 003): the vector page, vector_stub, svc_entry/usr_entry, __dabt_*/__pabt_*/__und_*,
@ v7_early_abort/v7_pabort, ret_to_user, vector_swi, and the boot code.
@
@ Included with `global_asm!(include_str!(..), options(raw))`: no `{}` templating, plain
@ GNU assembler syntax. Every handler runs in SVC mode on the SVC stack, as in Linux: the
@ per-mode stacks of ABT, UND and IRQ are three-word scratch areas (Linux's `struct stack`)
@ that only carry r0, the corrected return address and the SPSR across the mode switch.

	.syntax unified
	.arm

@ struct pt_regs (extable_runtime::arch::arm::PtRegs): r0..r15, cpsr, orig_r0
	.equ	S_R0, 0
	.equ	S_R1, 4
	.equ	S_SP, 52
	.equ	S_LR, 56
	.equ	S_PC, 60
	.equ	S_PSR, 64
	.equ	S_OLD_R0, 68
	.equ	PT_REGS_SIZE, 72

	.equ	USR_MODE, 0x10
	.equ	FIQ_MODE, 0x11
	.equ	IRQ_MODE, 0x12
	.equ	SVC_MODE, 0x13
	.equ	ABT_MODE, 0x17
	.equ	UND_MODE, 0x1b
	.equ	SYS_MODE, 0x1f
	.equ	MODE_MASK, 0x1f
	.equ	PSR_T_BIT, 0x20
	.equ	PSR_F_BIT, 0x40
	.equ	PSR_I_BIT, 0x80
	.equ	PSR_A_BIT, 0x100

	@ bad_mode reasons (Linux's BAD_PREFETCH, BAD_DATA, BAD_ADDREXCPTN, BAD_IRQ,
	@ BAD_UNDEFINSTR) plus our own for FIQ, reset and a SWI from a kernel mode
	.equ	BAD_PREFETCH, 0
	.equ	BAD_DATA, 1
	.equ	BAD_ADDREXCPTN, 2
	.equ	BAD_IRQ, 3
	.equ	BAD_UNDEFINSTR, 4
	.equ	BAD_FIQ, 5
	.equ	BAD_RESET, 6
	.equ	BAD_SWI, 7
	.equ	BAD_USER_PSR, 8

@ ---------------------------------------------------------------------------------------
@ Boot: the CPU starts here in SVC mode, MMU off, interrupts masked.

	.section .text.boot, "ax"
	.globl	_start
	.type	_start, %function
_start:
	cpsid	aif, #SVC_MODE
	mov	r0, #0
	mcr	p15, 0, r0, c13, c0, 4		@ TPIDRPRW: this is CPU 0
	@ The exception modes' scratch stacks (three words each), then the SVC stack.
	cps	#IRQ_MODE
	ldr	sp, =arm_stack_irq
	cps	#ABT_MODE
	ldr	sp, =arm_stack_abt
	cps	#UND_MODE
	ldr	sp, =arm_stack_und
	cps	#FIQ_MODE
	ldr	sp, =arm_stack_fiq
	cps	#SVC_MODE
	ldr	sp, =__svc_stack_top
	@ Exceptions go to VBAR (SCTLR.V = 0) and are taken in ARM state (SCTLR.TE = 0).
	ldr	r0, =arm_vectors
	mcr	p15, 0, r0, c12, c0, 0
	mrc	p15, 0, r0, c1, c0, 0
	bic	r0, r0, #(1 << 13)
	bic	r0, r0, #(1 << 30)
	mcr	p15, 0, r0, c1, c0, 0
	isb
	@ Clear .bss (the stacks live in their own section, so this does not wipe them).
	ldr	r0, =__bss_start
	ldr	r1, =__bss_end
	mov	r2, #0
1:	cmp	r0, r1
	strlo	r2, [r0], #4
	blo	1b
	bl	arm_start
2:	wfi
	b	2b
	.ltorg
	.size	_start, . - _start

@ A secondary CPU starts here (PSCI CPU_ON, context id = its CPU number in r0), in SVC
@ mode with the MMU off: TPIDRPRW, its own scratch stacks (ARM_SCRATCH bytes per CPU) and
@ SVC stack (ARM_SECONDARY_STACK bytes per CPU), the vectors, then
@ arm_secondary_start(cpu), which turns the MMU on and never returns.
	.equ	ARM_SCRATCH, 48
	.equ	ARM_SECONDARY_STACK, 32768
	.globl	arm_secondary_entry
	.type	arm_secondary_entry, %function
arm_secondary_entry:
	cpsid	aif, #SVC_MODE
	mcr	p15, 0, r0, c13, c0, 4
	ldr	r1, =arm_secondary_scratch
	mov	r2, #ARM_SCRATCH
	mla	r1, r0, r2, r1
	cps	#IRQ_MODE
	mov	sp, r1
	cps	#ABT_MODE
	add	sp, r1, #12
	cps	#UND_MODE
	add	sp, r1, #24
	cps	#FIQ_MODE
	add	sp, r1, #36
	cps	#SVC_MODE
	ldr	r1, =arm_secondary_stacks
	add	r2, r0, #1
	mov	r3, #ARM_SECONDARY_STACK
	mla	r1, r2, r3, r1
	mov	sp, r1
	ldr	r1, =arm_vectors
	mcr	p15, 0, r1, c12, c0, 0
	mrc	p15, 0, r1, c1, c0, 0
	bic	r1, r1, #(1 << 13)
	bic	r1, r1, #(1 << 30)
	mcr	p15, 0, r1, c1, c0, 0
	isb
	bl	arm_secondary_start
3:	wfi
	b	3b
	.ltorg
	.size	arm_secondary_entry, . - arm_secondary_entry

@ ---------------------------------------------------------------------------------------
@ The vector table (VBAR needs 32-byte alignment).

	.section .text.vectors, "ax"
	.balign	32
	.globl	arm_vectors
arm_vectors:
	b	vector_rst
	b	vector_und
	b	vector_swi
	b	vector_pabt
	b	vector_dabt
	b	vector_addrexcptn
	b	vector_irq
	b	vector_fiq

@ vector_stub name, mode, correction: Linux's macro. In the exception mode: correct lr to the
@ return address, save r0, lr and spsr in the mode's scratch stack, then switch to SVC mode
@ and jump, by the interrupted mode, through the 16-entry table that follows the stub.
@ r0 = the scratch stack, for svc_entry/usr_entry to collect.
	.macro	vector_stub, name, mode, correction=0
	.balign	32
vector_\name:
	.if \correction
	sub	lr, lr, #\correction
	.endif
	stmia	sp, {r0, lr}
	mrs	lr, spsr
	str	lr, [sp, #8]
	mrs	r0, cpsr
	eor	r0, r0, #(\mode ^ SVC_MODE)
	msr	spsr_cxsf, r0
	and	lr, lr, #0x0f
	mov	r0, sp
	ldr	lr, [pc, lr, lsl #2]
	movs	pc, lr
	.endm

@ Data abort: lr_abt = faulting instruction + 8, in ARM and in Thumb state.
	vector_stub	dabt, ABT_MODE, 8
	.long	__dabt_usr		@  0 (USR)
	.long	__dabt_invalid		@  1 (FIQ)
	.long	__dabt_invalid		@  2 (IRQ)
	.long	__dabt_svc		@  3 (SVC)
	.long	__dabt_invalid		@  4
	.long	__dabt_invalid		@  5
	.long	__dabt_invalid		@  6 (MON)
	.long	__dabt_invalid		@  7 (ABT)
	.long	__dabt_invalid		@  8
	.long	__dabt_invalid		@  9
	.long	__dabt_invalid		@  a (HYP)
	.long	__dabt_invalid		@  b (UND)
	.long	__dabt_invalid		@  c
	.long	__dabt_invalid		@  d
	.long	__dabt_invalid		@  e
	.long	__dabt_invalid		@  f (SYS)

@ Prefetch abort: lr_abt = faulting instruction + 4, in ARM and in Thumb state.
	vector_stub	pabt, ABT_MODE, 4
	.long	__pabt_usr
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_svc
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid
	.long	__pabt_invalid

@ Undefined instruction: lr_und = the next ARM instruction, or the faulting Thumb
@ instruction + 2. No correction here: __und_fault applies 4 or 2, as Linux does.
	vector_stub	und, UND_MODE
	.long	__und_usr
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_svc
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid
	.long	__und_invalid

@ IRQ: never unmasked by this kernel; any IRQ is a bug and reported as one.
	vector_stub	irq, IRQ_MODE, 4
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid
	.long	__irq_invalid

@ ---------------------------------------------------------------------------------------
@ Frame builders.

@ svc_entry: a pt_regs for an exception taken in SVC mode, on the SVC stack, 8-byte
@ aligned (Linux's SPFIX). r0 points at the scratch stack {r0, lr_<exc>, spsr_<exc>}.
@ Leaves r4 = corrected pc, r5 = interrupted cpsr.
	.macro	svc_entry
	sub	sp, sp, #(PT_REGS_SIZE - 4)
	tst	sp, #4
	subeq	sp, sp, #4
	stmia	sp, {r1 - r12}
	ldmia	r0, {r3 - r5}
	add	r7, sp, #(S_SP - 4)
	mov	r6, #-1
	add	r2, sp, #(PT_REGS_SIZE - 4)
	addeq	r2, r2, #4
	str	r3, [sp, #-4]!
	mov	r3, lr
	@ r2 = sp_svc, r3 = lr_svc, r4 = pc, r5 = cpsr, r6 = orig_r0
	stmia	r7, {r2 - r6}
	.endm

@ svc_exit: back to the interrupted SVC context. The psr is reloaded from the frame: a
@ fixup into a Thumb function (odd address) sets T and clears the IT bits in it.
	.macro	svc_exit
	ldr	r5, [sp, #S_PSR]
	msr	spsr_cxsf, r5
	clrex
	ldmia	sp, {r0 - pc}^
	.endm

@ usr_entry: a pt_regs for an exception taken in user mode, at the top of the task's kernel
@ stack (the SVC sp as arm_run_user left it). The user sp and lr are banked: stmdb ... ^.
	.macro	usr_entry
	sub	sp, sp, #PT_REGS_SIZE
	stmib	sp, {r1 - r12}
	ldmia	r0, {r3 - r5}
	add	r0, sp, #S_PC
	mov	r6, #-1
	str	r3, [sp]
	stmia	r0, {r4 - r6}
	stmdb	r0, {sp, lr}^
	.endm

@ inv_entry_r reason: an exception in a mode that must never take one (Linux's inv_entry +
@ common_invalid): build a frame and call arm_bad_mode(regs, reason), which does not return.
@ Enter in SVC mode with r0 = the scratch stack.
	.macro	inv_entry_r, reason
	sub	sp, sp, #PT_REGS_SIZE
	stmib	sp, {r1 - lr}
	ldmia	r0, {r4 - r6}
	add	r0, sp, #S_PC
	mov	r7, #-1
	str	r4, [sp]
	stmia	r0, {r5 - r7}
	mov	r0, sp
	mov	r1, #\reason
	bl	arm_bad_mode
	.endm

@ restore_user_regs: return to user mode from the frame at sp; the SVC sp goes back to the
@ top of the task's kernel stack.
	.macro	restore_user_regs
	mov	r2, sp
	ldr	r1, [r2, #S_PSR]
	ldr	lr, [r2, #S_PC]!
	tst	r1, #(PSR_I_BIT | 0x0f)
	bne	arm_bad_user_psr
	msr	spsr_cxsf, r1
	clrex
	ldmdb	r2, {r0 - lr}^
	nop
	add	sp, sp, #PT_REGS_SIZE
	movs	pc, lr
	.endm

@ ---------------------------------------------------------------------------------------
@ Data abort.

	.text
	.balign	32
__dabt_svc:
	svc_entry
	mov	r2, sp
	bl	v7_early_abort
	svc_exit

	.balign	32
__dabt_usr:
	usr_entry
	mov	r2, sp
	bl	v7_early_abort
	b	ret_from_exception

__dabt_invalid:
	inv_entry_r BAD_DATA

@ v7_early_abort: r0 = DFAR, r1 = DFSR, r2 = pt_regs, then do_DataAbort(addr, fsr, regs).
	.balign	32
	.globl	v7_early_abort
v7_early_abort:
	mrc	p15, 0, r1, c5, c0, 0
	mrc	p15, 0, r0, c6, c0, 0
	b	do_DataAbort

@ ---------------------------------------------------------------------------------------
@ Prefetch abort.

	.balign	32
__pabt_svc:
	svc_entry
	mov	r2, sp
	bl	v7_pabort
	svc_exit

	.balign	32
__pabt_usr:
	usr_entry
	mov	r2, sp
	bl	v7_pabort
	b	ret_from_exception

__pabt_invalid:
	inv_entry_r BAD_PREFETCH

@ v7_pabort: r0 = IFAR, r1 = IFSR, r2 = pt_regs, then do_PrefetchAbort(addr, ifsr, regs).
	.balign	32
	.globl	v7_pabort
v7_pabort:
	mrc	p15, 0, r0, c6, c0, 2
	mrc	p15, 0, r1, c5, c0, 1
	b	do_PrefetchAbort

@ ---------------------------------------------------------------------------------------
@ Undefined instruction. The saved pc is lr_und: the next ARM instruction, or the second
@ halfword of the Thumb instruction; __und_fault takes 4 (ARM) or 2 (Thumb) off it so that
@ do_undefinstr sees the faulting instruction (Linux's __und_usr_fault_32/_16).

	.balign	32
__und_svc:
	svc_entry
	mov	r0, sp
	bl	__und_fault
	svc_exit

	.balign	32
__und_usr:
	usr_entry
	mov	r0, sp
	bl	__und_fault
	b	ret_from_exception

__und_invalid:
	inv_entry_r BAD_UNDEFINSTR

@ __und_fault(regs): correct the saved pc, then do_undefinstr(regs).
__und_fault:
	ldr	r1, [r0, #S_PSR]
	tst	r1, #PSR_T_BIT
	moveq	r1, #4
	movne	r1, #2
	ldr	r2, [r0, #S_PC]
	sub	r2, r2, r1
	str	r2, [r0, #S_PC]
	b	do_undefinstr

@ ---------------------------------------------------------------------------------------
@ IRQ (never enabled).

__irq_invalid:
	inv_entry_r BAD_IRQ

@ FIQ and the reset/address-exception vectors are never expected either: save what we can
@ on the FIQ scratch stack (reset and the unused vector have no stack of their own) and die.
vector_fiq:
	sub	lr, lr, #4
	stmia	sp, {r0, lr}
	mrs	lr, spsr
	str	lr, [sp, #8]
	mov	r0, sp
	cps	#SVC_MODE
	inv_entry_r BAD_FIQ
vector_rst:
	cps	#SVC_MODE
	mov	r0, #BAD_RESET
	b	arm_bad_vector
vector_addrexcptn:
	cps	#SVC_MODE
	mov	r0, #BAD_ADDREXCPTN
	b	arm_bad_vector

@ ---------------------------------------------------------------------------------------
@ SWI: system calls from the user task (svc #0, number in r7, EABI). A SWI from a kernel
@ mode other than QEMU's semihosting call (which QEMU handles itself) is a bug.

	.balign	32
vector_swi:
	sub	sp, sp, #PT_REGS_SIZE
	stmia	sp, {r0 - r12}
	add	r8, sp, #S_PC
	stmdb	r8, {sp, lr}^
	mrs	r9, spsr
	str	lr, [sp, #S_PC]
	str	r9, [sp, #S_PSR]
	str	r0, [sp, #S_OLD_R0]
	and	r9, r9, #MODE_MASK
	cmp	r9, #USR_MODE
	bne	1f
	mov	r0, sp
	bl	arm_syscall
	b	ret_from_exception
1:	mov	r0, sp
	mov	r1, #BAD_SWI
	bl	arm_bad_mode

@ ---------------------------------------------------------------------------------------
@ Return to the user task with the registers of the frame. (A fatal signal or the exit
@ system call never gets here: they end the task through arm_task_return.)

	.globl	ret_from_exception
ret_from_exception:
ret_to_user:
	restore_user_regs

@ u32 arm_run_user(const PtRegs *regs, KernelContext *ctx)
@ Save the kernel's callee-saved registers and sp in *ctx, copy *regs to the top of the
@ task's kernel stack (right below the saved registers) and return to user mode with it.
@ Control comes back, as a return from this function, when arm_task_return(ctx, value)
@ is called.
	.globl	arm_run_user
	.type	arm_run_user, %function
arm_run_user:
	push	{r4 - r12, lr}
	str	sp, [r1]
	sub	sp, sp, #PT_REGS_SIZE
	mov	r2, sp
	mov	r3, #(PT_REGS_SIZE / 4)
1:	ldr	r12, [r0], #4
	str	r12, [r2], #4
	subs	r3, r3, #1
	bne	1b
	b	ret_to_user
	.size	arm_run_user, . - arm_run_user

@ ! arm_task_return(const KernelContext *ctx, u32 value)
@ Abandon the task's kernel stack and return `value` from the arm_run_user that saved ctx.
	.globl	arm_task_return
	.type	arm_task_return, %function
arm_task_return:
	ldr	sp, [r0]
	mov	r0, r1
	pop	{r4 - r12, pc}
	.size	arm_task_return, . - arm_task_return

@ A user return with a corrupt psr (a kernel mode, or IRQs masked): a kernel bug.
arm_bad_user_psr:
	mov	r0, sp
	mov	r1, #BAD_USER_PSR
	bl	arm_bad_mode

@ ---------------------------------------------------------------------------------------
@ The exception modes' scratch stacks: r0, the corrected return address and the SPSR
@ (Linux's struct stack); the SVC stack is in the linker script.

	.section .stacks, "aw", %nobits
	.balign	8
	.globl	arm_stack_irq, arm_stack_abt, arm_stack_und, arm_stack_fiq
arm_stack_irq:
	.space	12
arm_stack_abt:
	.space	12
arm_stack_und:
	.space	12
arm_stack_fiq:
	.space	12

@ The secondary CPUs' scratch stacks and SVC stacks, by CPU number (slot 0, the boot
@ CPU's, stays unused). Eight CPUs: crate::percpu::MAX_CPUS.
	.balign	8
arm_secondary_scratch:
	.space	8 * ARM_SCRATCH
	.balign	8
arm_secondary_stacks:
	.space	8 * ARM_SECONDARY_STACK
