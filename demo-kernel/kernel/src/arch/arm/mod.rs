//! ARMv7-A (Cortex-A15 on QEMU `virt`): boot, the vector table and entry stubs
//! (`entry.S`), the short-descriptor MMU, the data abort / prefetch abort /
//! undefined-instruction paths of Linux (seed 003), the PL011 console and the semihosting
//! exit, behind the shared [`Arch`] interface.

use extable_runtime::arch::arm::{PtRegs, PSR_T_BIT, USR_MODE};

use super::{Arch, UserLayout};
use crate::cell::PerCpu;
use crate::mm::{MapError, PageTables, Prot};
use crate::report::ExitCode;
use crate::scenarios::Scenario;

pub mod fault;
mod fdt;
pub mod mmu;
mod scenarios;
mod semihost;
mod smp;
mod timer;
pub mod traps;
mod uart;

core::arch::global_asm!(include_str!("entry.S"), options(raw));
core::arch::global_asm!(include_str!("user.S"), options(raw));

extern "C" {
    static __kernel_end: u8;
    static arm_vectors: u8;
    static arm_user_text_start: u8;
    static arm_user_text_end: u8;
    static arm_user_entry: u8;
    fn arm_run_user(regs: *const PtRegs, ctx: *mut usize) -> usize;
    fn arm_task_return(ctx: *const usize, value: usize) -> !;
}

/// Where QEMU puts the device tree for a bare-metal image: the start of RAM.
const DTB_ADDR: usize = mmu::RAM_START;
/// Room for it below the kernel image (linked at RAM + 1 MiB, see armv7.ld).
const DTB_MAX: usize = 1 << 20;

/// The ARM side of the kernel (see [`Arch`]).
pub struct Armv7;

/// Each CPU's SVC stack pointer of its pending [`Arch::enter_user`] (the kernel side of the
/// user-mode switch, Linux's saved `cpu_context`): written by `arm_run_user` and read by
/// `arm_task_return` on the same CPU, never at once.
static KERNEL_CONTEXT: PerCpu<usize> = PerCpu::new(0);

/// The C entry of the boot code (`_start` in entry.S), on the SVC stack with the vectors
/// installed: MMU on, then the shared kernel.
#[no_mangle]
extern "C" fn arm_start() -> ! {
    let entered_us = timer::uptime_us();
    mmu::init();
    crate::println!(
        "armv7: entered {} us after reset (CNTPCT), MIDR {:#010x}, VBAR {:#010x}, MMU on (short descriptors, init_mm at {:#010x}, TASK_SIZE {:#x})",
        entered_us,
        traps::read_midr(),
        core::ptr::addr_of!(arm_vectors) as usize,
        mmu::swapper().addr(),
        mmu::TASK_SIZE
    );
    scenarios::register_hooks();
    // SAFETY: QEMU puts the DTB at the start of RAM; the 1 MiB below the kernel image is
    // mapped, and never handed out (free memory starts after the image).
    let args = unsafe { fdt::bootargs(DTB_ADDR, DTB_MAX) };
    let cmdline = core::str::from_utf8(args).unwrap_or("");
    crate::kernel_main(cmdline)
}

/// The address of a linker or assembler symbol.
macro_rules! sym_addr {
    ($s:ident) => {
        core::ptr::addr_of!($s) as usize
    };
}

/// A user task's page tables (a process first-level table).
pub struct Space(mmu::Pgd);

impl PageTables for Space {
    fn new_user() -> Option<Self> {
        mmu::pgd_alloc().ok().map(Space)
    }

    fn map(&mut self, va: usize, pa: usize, prot: Prot) -> Result<(), MapError> {
        if self.0.translate(va).is_some() {
            return Err(MapError::Busy);
        }
        let prot = mmu::PageProt {
            user: prot.user,
            write: prot.write,
            exec: prot.exec,
        };
        self.0
            .map_page(va, pa, prot)
            .map_err(|_| MapError::OutOfMemory)
    }

    fn translate(&self, va: usize) -> Option<usize> {
        self.0.translate(va)
    }

    fn activate(&self) {
        mmu::switch_mm(self.0);
    }
}

impl Space {
    /// The first-level table.
    pub fn pgd(&self) -> mmu::Pgd {
        self.0
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        if mmu::cpu_get_pgd() == self.0 {
            mmu::switch_mm(mmu::swapper());
        }
        mmu::pgd_free(self.0);
    }
}

impl Arch for Armv7 {
    const NAME: &'static str = "armv7";
    const NOFAULT_REFUSES_USER: bool = false;

    type Space = Space;

    fn console_write(bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                uart::putc(b'\r');
            }
            uart::putc(b);
        }
    }

    fn exit(code: ExitCode) -> ! {
        semihost::exit(code as u32)
    }

    fn now_us() -> u64 {
        timer::uptime_us()
    }

    fn phys_to_virt(pa: usize) -> usize {
        pa
    }

    fn free_memory() -> core::ops::Range<usize> {
        let start = sym_addr!(__kernel_end).next_multiple_of(mmu::PAGE_SIZE);
        start..mmu::RAM_START + mmu::RAM_SIZE
    }

    /// TASK_SIZE: below it the kernel keeps nothing of its own (its image, RAM and devices
    /// are mapped above it), so the uaccess range check may hand out all of it.
    fn user_limit() -> usize {
        mmu::TASK_SIZE
    }

    fn user_layout() -> UserLayout {
        UserLayout {
            text: 0x0001_0000,
            data: 0x0010_0000,
            data_len: 16 * mmu::PAGE_SIZE,
            rodata: 0x0020_0000,
            unmapped: 0x0030_0000,
            stack_top: 0x0080_0000,
            stack_len: mmu::PAGE_SIZE,
            stack_limit: 8 * mmu::PAGE_SIZE,
            kernel_addr: sym_addr!(arm_user_text_start),
        }
    }

    fn user_text() -> (usize, usize, usize) {
        let start = sym_addr!(arm_user_text_start);
        let end = sym_addr!(arm_user_text_end);
        (start, end - start, sym_addr!(arm_user_entry) - start)
    }

    fn enter_user(entry: usize, sp: usize, args: [usize; 3]) -> usize {
        let mut regs = PtRegs::default();
        for (r, a) in regs.uregs.iter_mut().zip(args) {
            *r = a as u32;
        }
        regs.uregs[13] = sp as u32;
        regs.uregs[15] = (entry & !1) as u32;
        regs.set_cpsr(USR_MODE | if entry & 1 != 0 { PSR_T_BIT } else { 0 });
        // SAFETY: `regs` is a complete user-mode frame; the context slot is ours while the
        // task runs (one task at a time).
        unsafe { arm_run_user(&regs, KERNEL_CONTEXT.this_cpu_ptr()) }
    }

    fn leave_user(value: usize) -> ! {
        // SAFETY: called on behalf of the task `enter_user` started, whose context is saved;
        // the frames on the task's kernel stack are abandoned.
        unsafe { arm_task_return(KERNEL_CONTEXT.this_cpu_ptr(), value) }
    }

    fn activate_kernel_space() {
        mmu::switch_mm(mmu::swapper());
    }

    fn cpu_id() -> usize {
        smp::cpu_id()
    }

    fn start_secondaries(entry: fn(usize)) -> usize {
        smp::start_secondaries(entry)
    }

    fn scenarios() -> &'static [Scenario] {
        scenarios::SCENARIOS
    }

    fn load_held_in_fixup(addr: usize) -> bool {
        scenarios::load_held_in_fixup(addr)
    }

    fn faults_taken() -> Option<usize> {
        Some(fault::aborts())
    }
}
