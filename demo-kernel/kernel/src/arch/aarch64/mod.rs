//! AArch64 (QEMU `virt`, `-cpu max`): boot, the vector table and `kernel_entry` stubs
//! (`entry.S`), 4 KiB translation tables with the kernel in TTBR1 and the user task in
//! TTBR0, the synchronous exception handlers and `do_mem_abort` of Linux's arch/arm64, PAN,
//! BUG/WARN through `BRK` and `__bug_table`, PSCI bring-up of the other CPUs, the PL011
//! console and the semihosting exit, behind the shared [`Arch`] interface.

use extable_runtime::arch::aarch64::PtRegs;

use super::{Arch, UserLayout};
use crate::cell::PerCpu;
use crate::mm::{MapError, PageTables, Prot};
use crate::report::ExitCode;
use crate::scenarios::Scenario;

pub mod bug;
pub mod fault;
#[path = "../arm/fdt.rs"]
mod fdt;
pub mod mmu;
mod platform;
mod scenarios;
pub mod smp;
pub mod traps;

core::arch::global_asm!(include_str!("entry.S"), options(raw));
core::arch::global_asm!(include_str!("user.S"), options(raw));

extern "C" {
    static __kernel_end: u8;
    static aarch64_vectors: u8;
    static a64_user_text_start: u8;
    static a64_user_text_end: u8;
    static a64_user_entry: u8;
    fn aarch64_run_user(regs: *const PtRegs, ctx: *mut usize) -> usize;
    fn aarch64_task_return(ctx: *const usize, value: usize) -> !;
}

/// The address of a linker or assembler symbol.
macro_rules! sym_addr {
    ($s:ident) => {
        core::ptr::addr_of!($s) as usize
    };
}
pub(crate) use sym_addr;

/// The saved context of an exception: Linux's arm64 `pt_regs` head (the runtime's
/// [`PtRegs`]: x0–x30, sp, pc, pstate), then the syndrome and the fault address, as
/// `kernel_entry` in entry.S stores them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame {
    /// The registers; fixups rewrite `regs.pc`.
    pub regs: PtRegs,
    /// ESR_EL1 at entry.
    pub esr: u64,
    /// FAR_EL1 at entry (meaningful for aborts and alignment faults).
    pub far: u64,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 288);

/// PSTATE.M for EL0t.
pub const PSR_MODE_EL0T: u64 = 0;
/// PSTATE.M for EL1h.
pub const PSR_MODE_EL1H: u64 = 5;
/// PSTATE.M field.
pub const PSR_MODE_MASK: u64 = 0xf;
/// PSTATE.PAN.
pub const PSR_PAN_BIT: u64 = 1 << 22;

impl Frame {
    /// Whether the exception came from EL0.
    pub fn user_mode(&self) -> bool {
        self.regs.pstate & PSR_MODE_MASK == PSR_MODE_EL0T
    }
}

/// Where QEMU puts the device tree for a bare-metal image: the start of RAM.
const DTB_PHYS: usize = mmu::RAM_START;
/// Room for it below the kernel image (loaded at RAM + 2 MiB, see aarch64.ld).
const DTB_MAX: usize = 2 << 20;

/// The AArch64 side of the kernel (see [`Arch`]).
pub struct Aarch64;

/// Each CPU's kernel stack pointer of its pending [`Arch::enter_user`] (the kernel side of
/// the user-mode switch).
static KERNEL_CONTEXT: PerCpu<usize> = PerCpu::new(0);

/// The Rust entry of every CPU (`cpu_virt` in entry.S), on its own stack with its vectors
/// and TPIDR_EL1 set and the MMU on.
#[no_mangle]
extern "C" fn aarch64_start(cpu: usize) -> ! {
    mmu::cpu_init();
    if cpu != 0 {
        smp::secondary_main(cpu)
    }
    let entered_us = platform::uptime_us();
    crate::println!(
        "aarch64: entered {} us after reset (CNTPCT), MIDR_EL1 {:#010x}, VBAR_EL1 {:#x}, MMU on (4K pages, {}-bit VAs, TTBR1 {:#x}, TTBR0 reserved {:#x}), PAN {}",
        entered_us,
        traps::read_midr(),
        sym_addr!(aarch64_vectors),
        mmu::VA_BITS,
        mmu::swapper_phys(),
        mmu::reserved_phys(),
        if traps::pan_enabled() { "on" } else { "off" },
    );
    scenarios::register_hooks();
    // SAFETY: QEMU puts the DTB at the start of RAM, below the image; the linear map covers
    // it, and it is never handed out (free memory starts after the image).
    let args = unsafe { fdt::bootargs(Aarch64::phys_to_virt(DTB_PHYS), DTB_MAX) };
    let cmdline = core::str::from_utf8(args).unwrap_or("");
    crate::kernel_main(cmdline)
}

/// A user task's translation tables (its TTBR0 table).
pub struct Space(mmu::UserPgd);

impl PageTables for Space {
    fn new_user() -> Option<Self> {
        mmu::UserPgd::new().map(Space)
    }

    fn map(&mut self, va: usize, pa: usize, prot: Prot) -> Result<(), MapError> {
        self.0.map_page(va, pa, prot)
    }

    fn translate(&self, va: usize) -> Option<usize> {
        self.0.translate(va)
    }

    fn activate(&self) {
        mmu::switch_ttbr0(self.0.phys());
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        if mmu::current_ttbr0() == self.0.phys() {
            mmu::switch_ttbr0(mmu::reserved_phys());
        }
    }
}

impl Arch for Aarch64 {
    const NAME: &'static str = "aarch64";
    const NOFAULT_REFUSES_USER: bool = false;

    type Space = Space;

    fn console_write(bytes: &[u8]) {
        platform::console_write(bytes);
    }

    fn exit(code: ExitCode) -> ! {
        platform::exit(code as u32)
    }

    fn now_us() -> u64 {
        platform::uptime_us()
    }

    fn phys_to_virt(pa: usize) -> usize {
        pa + mmu::KIMAGE_VOFFSET
    }

    fn free_memory() -> core::ops::Range<usize> {
        let start = mmu::virt_to_phys(sym_addr!(__kernel_end)).next_multiple_of(mmu::PAGE_SIZE);
        start..mmu::RAM_START + mmu::RAM_SIZE
    }

    /// TASK_SIZE: the TTBR0 half. Everything of the kernel's is in the TTBR1 half.
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
            kernel_addr: sym_addr!(a64_user_text_start),
        }
    }

    fn user_text() -> (usize, usize, usize) {
        let start = sym_addr!(a64_user_text_start);
        let end = sym_addr!(a64_user_text_end);
        (
            mmu::virt_to_phys(start),
            end - start,
            sym_addr!(a64_user_entry) - start,
        )
    }

    fn enter_user(entry: usize, sp: usize, args: [usize; 3]) -> usize {
        let mut regs = PtRegs::default();
        for (r, a) in regs.regs.iter_mut().zip(args) {
            *r = a as u64;
        }
        regs.sp = sp as u64;
        regs.pc = entry as u64;
        regs.pstate = PSR_MODE_EL0T;
        // SAFETY: `regs` is a complete EL0 frame (interrupts are never unmasked anyway);
        // this CPU's context slot is ours while the task runs (one task at a time per CPU).
        unsafe { aarch64_run_user(&regs, KERNEL_CONTEXT.this_cpu_ptr()) }
    }

    fn leave_user(value: usize) -> ! {
        // SAFETY: called on behalf of the task `enter_user` started, whose context is saved;
        // the frames on the task's kernel stack are abandoned.
        unsafe { aarch64_task_return(KERNEL_CONTEXT.this_cpu_ptr(), value) }
    }

    fn activate_kernel_space() {
        mmu::switch_ttbr0(mmu::reserved_phys());
    }

    /// From TPIDR_EL1, which the boot code of every CPU sets before it can fault.
    fn cpu_id() -> usize {
        smp::cpu_id()
    }

    /// PSCI `CPU_ON` for CPU 1, 2, ... (see [`smp`]).
    fn start_secondaries(entry: fn(usize)) -> usize {
        smp::start_secondaries(entry)
    }

    fn scenarios() -> &'static [Scenario] {
        scenarios::SCENARIOS
    }

    fn load_held_in_fixup(addr: usize) -> bool {
        scenarios::load_held_in_fixup(addr)
    }

    /// PSTATE.PAN, set by the boot code of every CPU.
    fn user_access_protected() -> bool {
        traps::pan_enabled()
    }

    fn faults_taken() -> Option<usize> {
        Some(fault::aborts())
    }
}
