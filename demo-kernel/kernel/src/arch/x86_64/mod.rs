//! x86_64: PVH boot into long mode, Linux-style IDT entry stubs, 4-level paging with a
//! higher-half kernel, ring 3 with `int 0x80`, SMAP/SMEP, the page-fault path of
//! arch/x86/mm/fault.c, and application processors started with INIT-SIPI-SIPI.

pub mod boot;
#[macro_use]
pub mod bug;
pub mod cpu;
pub mod entry;
pub mod fault;
pub mod gdt;
pub mod idt;
pub mod io;
pub mod paging;
pub mod scenarios;
pub mod smp;
pub mod traps;
pub mod user;

use core::sync::atomic::{AtomicU64, Ordering};

use super::{Arch, UserLayout};
use crate::cell::Global;
use crate::mm::PAGE_SIZE;
use crate::report::ExitCode;
use crate::scenarios::Scenario;

/// The x86_64 architecture.
pub struct X86_64;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static TSC_PER_US: AtomicU64 = AtomicU64::new(1000);

/// The kernel command line, copied out of the PVH start info.
static CMDLINE: Global<([u8; 256], usize)> = Global::new(([0; 256], 0));

/// Physical memory the frame allocator uses: from the end of the image to 64 MiB (the
/// harness gives the machine 128 MiB).
const FREE_MEMORY_END: usize = 64 << 20;

extern "C" {
    static __kernel_end: u8;
    static __user_text_start: u8;
    static __user_text_end: u8;
}

/// `hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h), the fields we read.
#[repr(C)]
struct HvmStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
}

const HVM_START_MAGIC: u32 = 0x336e_c578;

/// Copy the command line out of the start info (through the direct map).
fn save_cmdline(start_info_pa: usize) {
    if start_info_pa == 0 || start_info_pa >= paging::DIRECT_MAP_SIZE {
        return;
    }
    // SAFETY: QEMU's PVH loader put the start info in RAM, inside the direct map.
    let info = unsafe { &*(paging::va(start_info_pa) as *const HvmStartInfo) };
    if info.magic != HVM_START_MAGIC || info.cmdline_paddr == 0 {
        return;
    }
    let src = paging::va(info.cmdline_paddr as usize) as *const u8;
    CMDLINE.with(|(buf, len)| {
        while *len < buf.len() {
            // SAFETY: a NUL-terminated string in RAM, read up to the buffer's size.
            let b = unsafe { src.add(*len).read() };
            if b == 0 {
                break;
            }
            buf[*len] = b;
            *len += 1;
        }
    });
}

fn cmdline() -> &'static str {
    CMDLINE.with(|(buf, len)| {
        // SAFETY: the buffer is static and never written again after boot.
        let bytes = unsafe { core::slice::from_raw_parts(buf.as_ptr(), *len) };
        core::str::from_utf8(bytes).unwrap_or("")
    })
}

/// The Rust entry, called by the boot code in long mode on the boot stack.
#[no_mangle]
extern "C" fn x86_64_start(start_info_pa: usize) -> ! {
    BOOT_TSC.store(io::rdtsc(), Ordering::Relaxed);
    smp::set_gs_base(0);
    gdt::init();
    idt::init();
    save_cmdline(start_info_pa);
    paging::init();
    TSC_PER_US.store(io::calibrate_tsc_per_us(), Ordering::Relaxed);
    let (smep, smap) = cpu::enable_smep_smap();
    let per_us = TSC_PER_US.load(Ordering::Relaxed);
    crate::println!(
        "x86_64: entered {} us after reset (TSC), long mode, IDT and TSS loaded, TSC {} MHz, SMEP {}, SMAP {}",
        BOOT_TSC.load(Ordering::Relaxed) / per_us.max(1),
        per_us,
        if smep { "on" } else { "absent" },
        if smap { "on" } else { "absent" }
    );
    crate::kernel_main(cmdline())
}

impl Arch for X86_64 {
    const NAME: &'static str = "x86_64";
    const NOFAULT_REFUSES_USER: bool = true;
    type Space = paging::Space;

    fn console_write(bytes: &[u8]) {
        io::serial_write(bytes);
    }

    fn exit(code: ExitCode) -> ! {
        io::qemu_exit(code as u32)
    }

    fn now_us() -> u64 {
        let ticks = io::rdtsc() - BOOT_TSC.load(Ordering::Relaxed);
        ticks / TSC_PER_US.load(Ordering::Relaxed).max(1)
    }

    fn phys_to_virt(pa: usize) -> usize {
        paging::va(pa)
    }

    fn free_memory() -> core::ops::Range<usize> {
        let end = paging::pa_symbol(core::ptr::addr_of!(__kernel_end) as usize);
        end.next_multiple_of(2 << 20)..FREE_MEMORY_END
    }

    fn user_limit() -> usize {
        paging::TASK_SIZE_MAX
    }

    fn user_layout() -> UserLayout {
        UserLayout {
            text: 0x40_0000,
            data: 0x60_0000,
            data_len: 16 * PAGE_SIZE,
            rodata: 0x70_0000,
            unmapped: 0x90_0000,
            stack_top: paging::TASK_SIZE_MAX,
            stack_len: 2 * PAGE_SIZE,
            stack_limit: 64 * 1024,
            kernel_addr: x86_64_start as *const () as usize,
        }
    }

    fn user_text() -> (usize, usize, usize) {
        let start = core::ptr::addr_of!(__user_text_start) as usize;
        let end = core::ptr::addr_of!(__user_text_end) as usize;
        let entry = user::user_main as *const () as usize - start;
        (paging::pa_symbol(start), end - start, entry)
    }

    fn enter_user(entry: usize, sp: usize, args: [usize; 3]) -> usize {
        user::enter_user(entry, sp, args)
    }

    fn leave_user(value: usize) -> ! {
        user::leave_user(value)
    }

    fn activate_kernel_space() {
        paging::activate_reference();
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

    /// CR4.SMEP and CR4.SMAP as the boot CPU set them.
    fn user_access_protected() -> bool {
        cpu::protections_like_boot_cpu()
    }

    fn faults_taken() -> Option<usize> {
        Some(fault::PAGE_FAULTS.load(Ordering::Relaxed))
    }
}
