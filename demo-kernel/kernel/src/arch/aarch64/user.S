// The demo user program (EL0, AArch64), mapped read+exec at the layout's text address.
// Position independent: only pc-relative branches. Entry: x0 = op, x1 = a, x2 = b
// (crate::arch::user_op, then the AArch64-only ops of arch::aarch64::scenarios from 32 on).
// It ends with exit(x0): svc #0 with x8 = 0.

	.section .user_text, "ax"
	.balign	4096
	.globl	a64_user_text_start
a64_user_text_start:
	.globl	a64_user_entry
	.globl	u_mrs_insn, u_udf_insn, u_brk_insn, u_ldxr_insn
a64_user_entry:
	cmp	x0, #32
	b.hs	a64_ops
	cmp	x0, #5
	b.hs	bad_op
	adr	x9, 1f
	add	x9, x9, x0, lsl #2
	br	x9
1:	b	op_read			// 0 READ
	b	op_write		// 1 WRITE
	b	op_stack		// 2 STACK
	b	op_sys_write		// 3 SYS_WRITE
	b	op_exec			// 4 EXEC

a64_ops:
	sub	x0, x0, #32
	cmp	x0, #4
	b.hs	bad_op
	adr	x9, 2f
	add	x9, x9, x0, lsl #2
	br	x9
2:	b	op_mrs			// 32 MRS_ID
	b	op_udf			// 33 UDF
	b	op_brk			// 34 BRK
	b	op_ldxr			// 35 LDXR

bad_op:
	mov	x0, #-1
user_exit:
	mov	x8, #0
	svc	#0
	b	user_exit

// Load the byte at a.
op_read:
	ldrb	w0, [x1]
	b	user_exit

// Store byte b at a, load it back.
op_write:
	strb	w2, [x1]
	ldrb	w0, [x1]
	b	user_exit

// Store a byte a bytes below sp, load it back.
op_stack:
	mov	x3, sp
	sub	x3, x3, x1
	mov	w0, #1
	strb	w0, [x3]
	ldrb	w0, [x3]
	b	user_exit

// write(a, b).
op_sys_write:
	mov	x0, x1
	mov	x1, x2
	mov	x8, #1
	svc	#0
	b	user_exit

// Jump to a.
op_exec:
	blr	x1
	b	user_exit

// MRS of ID_AA64ISAR0_EL1: trapped at EL0; the kernel's hook emulates it.
op_mrs:
	mov	x0, #0
u_mrs_insn:
	mrs	x0, id_aa64isar0_el1
	b	user_exit

// A permanently undefined instruction (UDF #7): no hook, SIGILL.
op_udf:
u_udf_insn:
	udf	#7
	b	user_exit

// A breakpoint: SIGTRAP.
op_brk:
u_brk_insn:
	brk	#0x7
	b	user_exit

// An exclusive load from a (unaligned: an alignment fault whatever SCTLR.A says).
op_ldxr:
u_ldxr_insn:
	ldxr	x0, [x1]
	b	user_exit

	.balign	4
	.globl	a64_user_text_end
a64_user_text_end:
