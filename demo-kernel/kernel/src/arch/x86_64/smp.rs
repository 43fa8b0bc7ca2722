//! Application processors (Linux's arch/x86/kernel/smpboot.c and realmode/rm/trampoline_64.S):
//! the boot CPU counts the CPUs in the ACPI MADT, copies a real-mode trampoline below 1 MiB,
//! and wakes the others with INIT-SIPI-SIPI through its local APIC. Each one climbs from real
//! mode through protected mode into long mode on temporary tables, jumps to the kernel's
//! link address, takes the next CPU number, and sets up its own GDT, TSS, IST stacks and GS
//! base (which [`cpu_id`] reads) before it runs the shared entry.

use core::sync::atomic::AtomicU32;

use super::paging::{self, DIRECT_MAP_SIZE};
use super::Arch;
use super::{cpu, gdt, idt};
use crate::percpu::{self, MAX_CPUS};

/// Where the trampoline is copied: a free page below 1 MiB (the SIPI vector is its page
/// number).
const TRAMPOLINE_PA: usize = 0x8000;
/// Each started CPU's kernel stack.
const AP_STACK_SIZE: usize = 32 * 1024;

core::arch::global_asm!(
    r#"
    .set TRAMP, {tramp}

    /* Copied to TRAMP at run time; the CPU starts it in real mode at TRAMP:0. The last
     * four bytes are the physical address of the top-level table to switch on paging with,
     * filled in after the copy. */
    .pushsection .rodata.ap_trampoline, "a"
    .balign 16
    .globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
    .code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (tr_gdt_ptr - ap_trampoline_start)
    mov %cr0, %eax
    or $1, %eax                               /* CR0.PE */
    mov %eax, %cr0
    ljmpl $0x08, $(TRAMP + tr_protected - ap_trampoline_start)
    .code32
tr_protected:
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %cr4, %eax
    or $0x20, %eax                            /* CR4.PAE */
    mov %eax, %cr4
    mov (TRAMP + tr_cr3 - ap_trampoline_start), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx                     /* EFER */
    rdmsr
    or $0x900, %eax                           /* LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax                      /* PG | WP | PE */
    mov %eax, %cr0
    ljmp $0x10, $(TRAMP + tr_long - ap_trampoline_start)
    .code64
tr_long:
    movabs $ap_start64, %rax
    jmp *%rax
    .balign 8
tr_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff                  /* 0x08: 32-bit code */
    .quad 0x00af9a000000ffff                  /* 0x10: 64-bit code */
    .quad 0x00cf92000000ffff                  /* 0x18: data */
tr_gdt_ptr:
    .word tr_gdt_ptr - tr_gdt - 1
    .long TRAMP + tr_gdt - ap_trampoline_start
    .balign 4
tr_cr3:
    .long 0
ap_trampoline_end:
    .popsection

    /* Long mode at the link address, still on the trampoline's tables: take the next CPU
     * number; CPUs beyond the per-CPU arrays halt; the others switch to their own stack and
     * call x86_64_ap_start(cpu). */
    .pushsection .text.entry, "ax"
ap_start64:
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    mov $1, %eax
    lock xaddl %eax, x86_64_ap_next(%rip)
    cmp ${max_cpus}, %eax
    jae 2f
    mov %eax, %edi
    lea 1(%rax), %rax
    imul ${stack_size}, %rax
    lea ap_stacks(%rip), %rsp
    add %rax, %rsp
    call x86_64_ap_start
2:  cli
    hlt
    jmp 2b
    .popsection

    .pushsection .bss.ap_stacks, "aw", @nobits
    .balign 16
ap_stacks:
    .skip {max_cpus} * {stack_size}
    .popsection
"#,
    tramp = const TRAMPOLINE_PA,
    max_cpus = const MAX_CPUS,
    stack_size = const AP_STACK_SIZE,
    options(att_syntax)
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// The next CPU number an application processor takes (the boot CPU is 0).
#[no_mangle]
static x86_64_ap_next: AtomicU32 = AtomicU32::new(1);

/// Each CPU's GS base points at its entry: `gs:[0]` is the CPU number.
static CPU_NUMBERS: [usize; MAX_CPUS] = {
    let mut n = [0; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        n[i] = i;
        i += 1;
    }
    n
};

const MSR_GS_BASE: u32 = 0xc000_0101;
const MSR_APIC_BASE: u32 = 0x1b;
const MSR_X2APIC_ICR: u32 = 0x830;
const APIC_BASE_EXTD: u64 = 1 << 10;
const APIC_BASE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// xAPIC registers: spurious-interrupt vector (bit 8: APIC enabled), ICR low and high.
const XAPIC_SVR: usize = 0xf0;
const XAPIC_ICR_LOW: usize = 0x300;
const XAPIC_ICR_HIGH: usize = 0x310;
/// ICR: the IPI is still being sent.
const ICR_PENDING: u32 = 1 << 12;
/// How long to wait for an IPI to leave, in microseconds.
const IPI_TIMEOUT_US: u64 = 10_000;
/// ICR: to all but self, level assert, INIT.
const ICR_INIT_ALL_BUT_SELF: u32 = (0b11 << 18) | (1 << 14) | (0b101 << 8);
/// ICR: to all but self, level assert, start-up (vector = the trampoline's page number).
const ICR_SIPI_ALL_BUT_SELF: u32 = (0b11 << 18) | (1 << 14) | (0b110 << 8);

/// Point this CPU's GS base at its number (before anything calls [`cpu_id`]).
pub fn set_gs_base(cpu: usize) {
    let base = &CPU_NUMBERS[cpu] as *const usize as u64;
    // SAFETY: the GS base only affects gs-relative accesses, which only `cpu_id` makes.
    unsafe { wrmsr(MSR_GS_BASE, base) };
}

/// This CPU's number, read through its GS base.
pub fn cpu_id() -> usize {
    let cpu: usize;
    // SAFETY: every CPU sets its GS base to its entry of `CPU_NUMBERS` before it runs any
    // code that calls this; the read has no side effects.
    unsafe {
        core::arch::asm!(
            "mov {}, qword ptr gs:[0]",
            out(reg) cpu,
            options(nostack, preserves_flags, readonly)
        )
    };
    cpu
}

/// Write a model-specific register.
///
/// # Safety
/// The register and value must be valid and their effect expected by the kernel.
unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        core::arch::asm!(
            "wrmsr",
            in("ecx") msr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
            options(nostack, preserves_flags)
        )
    };
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading the architectural MSRs this module names has no side effects.
    unsafe {
        core::arch::asm!(
            "rdmsr",
            in("ecx") msr,
            out("eax") lo,
            out("edx") hi,
            options(nostack, preserves_flags)
        )
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// How the boot CPU reaches its local APIC: x2APIC MSRs (when the firmware left it in that
/// mode) or the xAPIC registers at this (mapped) address.
#[derive(Clone, Copy)]
enum Apic {
    X2apic,
    Xapic(usize),
}

impl Apic {
    /// Find the boot CPU's APIC, map it if it is memory-mapped, and software-enable it.
    fn init() -> Option<Apic> {
        let base = rdmsr(MSR_APIC_BASE);
        if base & APIC_BASE_EXTD != 0 {
            return Some(Apic::X2apic);
        }
        let va = paging::ioremap((base & APIC_BASE_ADDR) as usize)?;
        let apic = Apic::Xapic(va);
        apic.write(XAPIC_SVR, apic.read(XAPIC_SVR) | 0x100);
        Some(apic)
    }

    fn reg(va: usize, off: usize) -> *mut u32 {
        (va + off) as *mut u32
    }

    fn read(self, off: usize) -> u32 {
        match self {
            Apic::X2apic => 0,
            // SAFETY: an xAPIC register of the page `init` mapped uncached.
            Apic::Xapic(va) => unsafe { Self::reg(va, off).read_volatile() },
        }
    }

    fn write(self, off: usize, value: u32) {
        if let Apic::Xapic(va) = self {
            // SAFETY: an xAPIC register of the page `init` mapped uncached; the values
            // written are the enable bit and IPIs to the CPUs not started yet.
            unsafe { Self::reg(va, off).write_volatile(value) };
        }
    }

    /// Send an IPI (ICR low bits; the destination is a shorthand) and wait until it left.
    fn send_ipi(self, icr: u32) {
        match self {
            // SAFETY: the x2APIC is enabled; INIT and SIPI go to CPUs that run nothing yet.
            Apic::X2apic => unsafe { wrmsr(MSR_X2APIC_ICR, u64::from(icr)) },
            Apic::Xapic(_) => {
                self.write(XAPIC_ICR_HIGH, 0);
                self.write(XAPIC_ICR_LOW, icr);
                let start = super::X86_64::now_us();
                while self.read(XAPIC_ICR_LOW) & ICR_PENDING != 0
                    && super::X86_64::now_us() - start < IPI_TIMEOUT_US
                {
                    core::hint::spin_loop();
                }
            }
        }
    }
}

fn delay_us(us: u64) {
    let start = super::X86_64::now_us();
    while super::X86_64::now_us() - start < us {
        core::hint::spin_loop();
    }
}

/// Copy the trampoline to [`TRAMPOLINE_PA`] and give it a top-level table that maps the
/// kernel as the reference does plus the first 1 GiB at its physical address, so that the
/// instruction after the switch to paging is still mapped.
fn install_trampoline() -> Option<()> {
    let start = core::ptr::addr_of!(ap_trampoline_start) as usize;
    let len = core::ptr::addr_of!(ap_trampoline_end) as usize - start;
    let pml4 = crate::mm::alloc_frame()?;
    // SAFETY: a fresh frame and the reference table are distinct table frames; entry 273
    // is the direct map of the first 1 GiB, entry 0 of the new table maps it again at 0.
    unsafe {
        let reference = paging::table(paging::reference_pa());
        let t = paging::table(pml4);
        t.copy_from_slice(reference);
        t[0] = t[paging::index(paging::PAGE_OFFSET, 4)];
    }
    let dst = paging::va(TRAMPOLINE_PA) as *mut u8;
    // SAFETY: the page at TRAMPOLINE_PA is free low memory the firmware does not use after
    // the handoff, inside the direct map; the source is the kernel's read-only copy.
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, dst, len);
        (dst.add(len - 4) as *mut u32).write_volatile(pml4 as u32);
    }
    Some(())
}

/// Start the application processors; returns how many CPUs are online.
pub fn start_secondaries(entry: fn(usize)) -> usize {
    if !percpu::claim_start() {
        return percpu::online();
    }
    let listed = acpi::madt_cpus().unwrap_or(1);
    let want = listed.min(MAX_CPUS);
    if want <= 1 || install_trampoline().is_none() {
        return percpu::online();
    }
    let Some(apic) = Apic::init() else {
        return percpu::online();
    };
    percpu::prepare_secondaries(entry);
    apic.send_ipi(ICR_INIT_ALL_BUT_SELF);
    delay_us(1000);
    for _ in 0..2 {
        apic.send_ipi(ICR_SIPI_ALL_BUT_SELF | (TRAMPOLINE_PA >> 12) as u32);
        delay_us(200);
    }
    let online = percpu::wait_online(want, 1_000_000);
    crate::println!(
        "x86_64: MADT lists {} CPUs; INIT-SIPI-SIPI through the {}, trampoline at {:#x}: {} online",
        listed,
        match apic {
            Apic::X2apic => "x2APIC",
            Apic::Xapic(_) => "xAPIC",
        },
        TRAMPOLINE_PA,
        online
    );
    online
}

/// The Rust entry of an application processor, on its own stack, still on the
/// trampoline's tables.
#[no_mangle]
extern "C" fn x86_64_ap_start(cpu: usize) -> ! {
    paging::activate_reference();
    set_gs_base(cpu);
    gdt::init();
    idt::load();
    cpu::enable_smep_smap_like_boot_cpu();
    percpu::secondary_main(cpu);
    loop {
        // SAFETY: halting with interrupts masked parks this CPU for good.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// The CPU count from the ACPI MADT (Linux's `acpi_parse_madt_lapic_entries`).
mod acpi {
    use super::{paging, DIRECT_MAP_SIZE};

    /// Where the legacy BIOS area the RSDP may sit in starts and ends.
    const BIOS_AREA: core::ops::Range<usize> = 0xe_0000..0x10_0000;

    /// Read a `T` at physical `pa`, if the direct map covers it.
    fn read<T: Copy>(pa: usize) -> Option<T> {
        if pa.checked_add(core::mem::size_of::<T>())? > DIRECT_MAP_SIZE {
            return None;
        }
        // SAFETY: inside the direct map of RAM / firmware areas; an unaligned plain read.
        Some(unsafe { core::ptr::read_unaligned(paging::va(pa) as *const T) })
    }

    fn rsdp() -> Option<usize> {
        BIOS_AREA.step_by(16).find(|&pa| {
            read::<[u8; 8]>(pa) == Some(*b"RSD PTR ")
                && (0..20).fold(0u8, |s, i| s.wrapping_add(read::<u8>(pa + i).unwrap_or(1))) == 0
        })
    }

    /// The physical address of the table with `signature`, from the RSDT or XSDT.
    fn find_table(signature: &[u8; 4]) -> Option<usize> {
        let rsdp = rsdp()?;
        let revision = read::<u8>(rsdp + 15)?;
        let (root, width) = if revision >= 2 && read::<u64>(rsdp + 24)? != 0 {
            (read::<u64>(rsdp + 24)? as usize, 8)
        } else {
            (read::<u32>(rsdp + 16)? as usize, 4)
        };
        let len = read::<u32>(root + 4)? as usize;
        (root + 36..root + len).step_by(width).find_map(|at| {
            let pa = if width == 8 {
                read::<u64>(at)? as usize
            } else {
                read::<u32>(at)? as usize
            };
            (read::<[u8; 4]>(pa)? == *signature).then_some(pa)
        })
    }

    /// How many usable CPUs the MADT lists (local APIC and local x2APIC entries that are
    /// enabled or online capable).
    pub fn madt_cpus() -> Option<usize> {
        let madt = find_table(b"APIC")?;
        let len = read::<u32>(madt + 4)? as usize;
        let mut at = madt + 44;
        let mut cpus = 0;
        while at + 2 <= madt + len {
            let (kind, size) = (read::<u8>(at)?, read::<u8>(at + 1)? as usize);
            let flags = match kind {
                0 => read::<u32>(at + 4)?,
                9 => read::<u32>(at + 8)?,
                _ => 0,
            };
            if flags & 0b11 != 0 {
                cpus += 1;
            }
            if size == 0 {
                break;
            }
            at += size;
        }
        Some(cpus)
    }
}
