//! Ring 3: entering the user task with `iretq`, the `int 0x80` system call, leaving the task
//! (exit or signal) back to the kernel code that entered it, and the user program itself.

use extable_runtime::arch::x86_64::PtRegs;

use super::gdt::{USER_CS, USER_DS};
use crate::arch::{sys, user_op};
use crate::cell::PerCpu;
use crate::task;

/// Each CPU's kernel stack pointer saved by [`enter_user`], restored by [`leave_user`].
static USER_RETURN_RSP: PerCpu<u64> = PerCpu::new(0);

/// Save the callee-saved registers and the stack pointer (in `*ctx`), then `iretq` to ring
/// 3 at `entry` with stack `sp` and the three arguments from `args`. "Returns" when
/// [`leave_user_asm`] restores the saved state.
#[unsafe(naked)]
extern "C" fn enter_user_asm(
    entry: usize,
    sp: usize,
    args: *const [usize; 3],
    ctx: *mut u64,
) -> usize {
    core::arch::naked_asm!(
        "push rbx",
        "push rbp",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov [rcx], rsp",
        "push {user_ds}",         // SS
        "push rsi",               // RSP
        "push 0x2",               // RFLAGS: IF clear, reserved bit 1
        "push {user_cs}",         // CS
        "push rdi",               // RIP
        "mov rdi, [rdx]",
        "mov rsi, [rdx + 8]",
        "mov rdx, [rdx + 16]",
        "xor eax, eax",
        "xor ebx, ebx",
        "xor ecx, ecx",
        "xor ebp, ebp",
        "xor r8d, r8d",
        "xor r9d, r9d",
        "xor r10d, r10d",
        "xor r11d, r11d",
        "xor r12d, r12d",
        "xor r13d, r13d",
        "xor r14d, r14d",
        "xor r15d, r15d",
        "iretq",
        user_ds = const USER_DS as u64,
        user_cs = const USER_CS as u64,
    )
}

/// Abandon the trap frame we are running on (the TSS.RSP0 stack) and return `value` from
/// the pending [`enter_user_asm`] whose state is in `*ctx`.
#[unsafe(naked)]
extern "C" fn leave_user_asm(value: usize, ctx: *const u64) -> ! {
    core::arch::naked_asm!(
        "mov rsp, [rsi]",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbp",
        "pop rbx",
        "mov rax, rdi",
        "ret",
    )
}

/// Enter the user task (see [`crate::arch::Arch::enter_user`]).
pub fn enter_user(entry: usize, sp: usize, args: [usize; 3]) -> usize {
    enter_user_asm(entry, sp, &args, USER_RETURN_RSP.this_cpu_ptr())
}

/// Leave the user task (see [`crate::arch::Arch::leave_user`]).
pub fn leave_user(value: usize) -> ! {
    leave_user_asm(value, USER_RETURN_RSP.this_cpu_ptr())
}

/// The `int 0x80` handler: number in rax, arguments in rdi, rsi, rdx, result in rax.
#[no_mangle]
extern "C" fn do_int80_syscall(regs: &mut PtRegs, _error_code: u64, _vector: u64) {
    regs.orig_rax = regs.rax;
    let args = [regs.rdi as usize, regs.rsi as usize, regs.rdx as usize];
    regs.rax = task::syscall(regs.rax as usize, args) as u64;
}

/// The user program (see [`crate::arch::user_op`]): `(op, a, b)` in rdi, rsi, rdx. It is
/// position independent and sits on pages of its own, mapped at the layout's text address.
#[unsafe(naked)]
#[link_section = ".user_text"]
pub extern "C" fn user_main() -> ! {
    core::arch::naked_asm!(
        "cmp rdi, {read}",
        "je 2f",
        "cmp rdi, {write}",
        "je 3f",
        "cmp rdi, {stack}",
        "je 4f",
        "cmp rdi, {syswrite}",
        "je 5f",
        "cmp rdi, {exec}",
        "je 6f",
        "mov edi, 0xff",
        "jmp 9f",
        "2:",
        "movzx edi, byte ptr [rsi]",
        "jmp 9f",
        "3:",
        "mov byte ptr [rsi], dl",
        "movzx edi, byte ptr [rsi]",
        "jmp 9f",
        "4:",
        "mov rax, rsp",
        "sub rax, rsi",
        "mov byte ptr [rax], 1",
        "movzx edi, byte ptr [rax]",
        "jmp 9f",
        "5:",
        "mov rdi, rsi",
        "mov rsi, rdx",
        "mov eax, {sys_write}",
        "int 0x80",
        "mov rdi, rax",
        "jmp 9f",
        "6:",
        "call rsi",
        "mov edi, 0xfe",
        "9:",
        "mov eax, {sys_exit}",
        "int 0x80",
        "ud2",
        read = const user_op::READ,
        write = const user_op::WRITE,
        stack = const user_op::STACK,
        syswrite = const user_op::SYS_WRITE,
        exec = const user_op::EXEC,
        sys_write = const sys::WRITE,
        sys_exit = const sys::EXIT,
    )
}
