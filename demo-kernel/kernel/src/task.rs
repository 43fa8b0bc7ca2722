//! The user task: one address space with the demo layout, entered in user mode through the
//! arch, leaving on the exit system call or a fatal signal.

use crate::arch::{sys, Arch, Current, UserLayout};
use crate::cell::PerCpu;
use crate::mm::{
    self, Mm, PageTables, Prot, Vma, PAGE_SIZE, VM_EXEC, VM_GROWSDOWN, VM_READ, VM_WRITE,
};
use crate::println;
use crate::signal::SigInfo;
use crate::uaccess::copy_from_user;

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit(code)`.
    Exited(usize),
    /// A signal killed it.
    Killed(SigInfo),
}

/// The outcome of the task running on each CPU, set just before the arch leaves user mode.
static OUTCOME: PerCpu<Option<Exit>> = PerCpu::new(None);

/// `-EFAULT`.
pub const EFAULT: isize = -14;
/// `-ENOSYS`.
pub const ENOSYS: isize = -38;

/// Build the demo task's address space: the program text (mapped now), a demand-zero data
/// area, a read-only page and a grows-down stack (all served on fault).
pub fn new_mm() -> Option<Mm> {
    let l: UserLayout = Current::user_layout();
    let mut mm = Mm::new(l.stack_limit)?;
    let (text_pa, text_len, _) = Current::user_text();
    let text_len = text_len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let rx = Prot {
        write: false,
        exec: true,
        user: true,
    };
    for off in (0..text_len).step_by(PAGE_SIZE) {
        mm.space.map(l.text + off, text_pa + off, rx).ok()?;
    }
    let vmas = [
        (l.text, l.text + text_len, VM_READ | VM_EXEC),
        (l.data, l.data + l.data_len, VM_READ | VM_WRITE),
        (l.rodata, l.rodata + PAGE_SIZE, VM_READ),
        (
            l.stack_top - l.stack_len,
            l.stack_top,
            VM_READ | VM_WRITE | VM_GROWSDOWN,
        ),
    ];
    for (start, end, flags) in vmas {
        if !mm.add_vma(Vma { start, end, flags }) {
            return None;
        }
    }
    Some(mm)
}

/// Run the user program with operation `op` and arguments `a`, `b` (see
/// [`crate::arch::user_op`]) in `mm` until it exits or is killed.
pub fn run(mm: &mut Mm, op: usize, a: usize, b: usize) -> Exit {
    let l = Current::user_layout();
    let (_, _, entry) = Current::user_text();
    OUTCOME.set(None);
    mm.space.activate();
    mm::set_current(mm);
    Current::enter_user(l.text + entry, l.stack_top, [op, a, b]);
    mm::clear_current();
    Current::activate_kernel_space();
    let outcome = OUTCOME.get();
    OUTCOME.set(None);
    outcome.unwrap_or(Exit::Killed(SigInfo::new(0, 0, 0)))
}

/// Run `f` in kernel mode with `mm` as the current address space (its user half reachable
/// through the uaccess primitives, its faults served by [`mm::do_user_addr_fault`]).
pub fn with_mm<R>(mm: &mut Mm, f: impl FnOnce() -> R) -> R {
    mm.space.activate();
    mm::set_current(mm);
    let r = f();
    mm::clear_current();
    Current::activate_kernel_space();
    r
}

/// End the current task with `exit` (from a system call or a signal).
fn leave(exit: Exit) -> ! {
    OUTCOME.set(Some(exit));
    Current::leave_user(0)
}

/// Kill the current task with `info` (the default action of a fatal signal).
pub fn kill_current(info: SigInfo) -> ! {
    leave(Exit::Killed(info))
}

/// The system-call dispatcher, called by the arch's trap entry with the number and the
/// first three arguments; the return value goes back in the return register.
pub fn syscall(nr: usize, args: [usize; 3]) -> isize {
    match nr {
        sys::EXIT => leave(Exit::Exited(args[0])),
        sys::WRITE => sys_write(args[0], args[1]),
        _ => ENOSYS,
    }
}

/// `write(buf, len)` to the console, copying the user buffer with `copy_from_user`.
fn sys_write(buf: usize, len: usize) -> isize {
    let mut kbuf = [0u8; 128];
    let n = len.min(kbuf.len());
    let left = copy_from_user(&mut kbuf[..n], buf);
    if left != 0 {
        return EFAULT;
    }
    let text = core::str::from_utf8(&kbuf[..n]).unwrap_or("<not utf-8>");
    println!("user: {}", text);
    n as isize
}
