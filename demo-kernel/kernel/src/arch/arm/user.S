@ The demo user program (USR mode), mapped read+exec at the layout's text address. Position
@ independent: only pc-relative branches and no literal pools, so it runs wherever it is
@ mapped. Entry: r0 = op, r1 = a, r2 = b (crate::arch::user_op, then the ARM-only ops of
@ arch::arm::user_ops from 32 on). It ends with exit(r0): svc #0 with r7 = 0.

	.syntax unified
	.section .user_text, "ax"
	.balign	4096
	.globl	arm_user_text_start
arm_user_text_start:

	.arm
	.globl	arm_user_entry
	.globl	u_midr_a32_insn, u_udf_a32_insn, u_ldrd_insn, u_t32_midr_insn
	.globl	u_t16_udf_insn, u_t32_udf_insn, u_t32_write_insn, u_t32_read_insn
arm_user_entry:
	cmp	r0, #32
	bhs	arm_ops
	cmp	r0, #5
	bhs	bad_op
	add	pc, pc, r0, lsl #2
	nop
	b	op_read			@ 0 READ
	b	op_write		@ 1 WRITE
	b	op_stack		@ 2 STACK
	b	op_sys_write		@ 3 SYS_WRITE
	b	op_exec			@ 4 EXEC

arm_ops:
	sub	r0, r0, #32
	cmp	r0, #8
	bhs	bad_op
	add	pc, pc, r0, lsl #2
	nop
	b	op_midr_a32		@ 32 MIDR_A32
	b	op_midr_t32		@ 33 MIDR_T32
	b	op_udf_a32		@ 34 UDF_A32
	b	op_udf_t16		@ 35 UDF_T16
	b	op_ldrd			@ 36 LDRD
	b	op_t32_write		@ 37 T32_WRITE
	b	op_t32_read		@ 38 T32_READ
	b	op_udf_t32		@ 39 UDF_T32

bad_op:
	mvn	r0, #0
	b	user_exit

user_exit:
	mov	r7, #0
	svc	#0
	b	user_exit

@ Load the byte at a.
op_read:
	ldrb	r0, [r1]
	b	user_exit

@ Store byte b at a, load it back.
op_write:
	strb	r2, [r1]
	ldrb	r0, [r1]
	b	user_exit

@ Store a byte a bytes below sp, load it back.
op_stack:
	sub	r3, sp, r1
	mov	r0, #1
	strb	r0, [r3]
	ldrb	r0, [r3]
	b	user_exit

@ write(a, b).
op_sys_write:
	mov	r0, r1
	mov	r1, r2
	mov	r7, #1
	svc	#0
	b	user_exit

@ Jump to a (ARM state for an even address, Thumb for an odd one).
op_exec:
	blx	r1
	b	user_exit

@ MRC p15, 0, r0, c0, c0, 0 (MIDR): UNDEFINED in USR mode; an undef hook emulates it.
op_midr_a32:
	mov	r0, #0
u_midr_a32_insn:
	mrc	p15, 0, r0, c0, c0, 0
	b	user_exit

op_midr_t32:
	blx	t32_midr
	b	user_exit

@ A permanently undefined A32 instruction (UDF #7): no hook, SIGILL.
op_udf_a32:
u_udf_a32_insn:
	udf	#7
	b	user_exit

op_udf_t16:
	blx	t16_udf
	b	user_exit

op_udf_t32:
	blx	t32_udf
	b	user_exit

@ LDRD needs a word-aligned address even with SCTLR.A clear: a = data + 1 gives an
@ alignment fault, which fsr_info does not handle (SIGBUS, BUS_ADRALN).
op_ldrd:
u_ldrd_insn:
	ldrd	r2, r3, [r1]
	mov	r0, r2
	b	user_exit

@ Thumb-2 store and load: the demand-paging fault is taken on a 32-bit Thumb instruction
@ and the access is retried there.
op_t32_write:
	blx	t32_write
	b	user_exit

op_t32_read:
	blx	t32_read
	b	user_exit

	.thumb
	.thumb_func
t32_midr:
	movs	r0, #0
u_t32_midr_insn:
	mrc	p15, 0, r0, c0, c0, 0
	bx	lr

	.thumb_func
t16_udf:
u_t16_udf_insn:
	udf	#7
	bx	lr

	.thumb_func
t32_udf:
u_t32_udf_insn:
	udf.w	#7
	bx	lr

	.thumb_func
t32_write:
u_t32_write_insn:
	strb.w	r2, [r1]
	ldrb.w	r0, [r1]
	bx	lr

	.thumb_func
t32_read:
u_t32_read_insn:
	ldr.w	r0, [r1]
	bx	lr

	.arm
	.balign	4
	.globl	arm_user_text_end
arm_user_text_end:
