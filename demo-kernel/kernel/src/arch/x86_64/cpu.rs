//! Control registers, CPUID features, and the SMAP/SMEP switches.

use core::sync::atomic::{AtomicBool, Ordering};

/// CR4.SMEP.
pub const CR4_SMEP: u64 = 1 << 20;
/// CR4.SMAP.
pub const CR4_SMAP: u64 = 1 << 21;
/// RFLAGS.AC: user access allowed under SMAP (set by STAC, cleared by CLAC).
pub const RFLAGS_AC: u64 = 1 << 18;

/// Read CR2, the faulting address of the last page fault.
pub fn read_cr2() -> usize {
    let v: usize;
    // SAFETY: reading CR2 has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Read CR3's physical address part: the active top-level page table.
pub fn read_cr3_pa() -> usize {
    let v: usize;
    // SAFETY: reading CR3 has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v & 0x000f_ffff_ffff_f000
}

/// Load CR3 (switch address space, flushing non-global TLB entries).
///
/// # Safety
/// `pa` must be a complete top-level table that maps the running code, its stack and every
/// kernel structure the CPU uses (GDT, IDT, TSS, stacks).
pub unsafe fn write_cr3(pa: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) pa, options(nostack, preserves_flags)) };
}

/// Flush the TLB entry of `va`.
pub fn invlpg(va: usize) {
    // SAFETY: invalidating a TLB entry only costs a later walk.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Set bits in CR4.
///
/// # Safety
/// The bits must be supported by the CPU and the kernel must be ready for their effect.
unsafe fn set_cr4(bits: u64) {
    let v = read_cr4() | bits;
    // SAFETY: guaranteed by the caller.
    unsafe { core::arch::asm!("mov cr4, {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// CPUID leaf 7 subleaf 0, EBX.
fn cpuid7_ebx() -> u32 {
    // cpuid exists on every x86_64 CPU; leaf 0 says whether leaf 7 does.
    let max = core::arch::x86_64::__cpuid(0).eax;
    if max < 7 {
        return 0;
    }
    core::arch::x86_64::__cpuid_count(7, 0).ebx
}

/// Whether the CPU has SMEP.
pub fn has_smep() -> bool {
    cpuid7_ebx() & (1 << 7) != 0
}

/// Whether the CPU has SMAP.
pub fn has_smap() -> bool {
    cpuid7_ebx() & (1 << 20) != 0
}

/// Read by the entry stubs' `ASM_CLAC`: CLAC is only executed once SMAP is on (the CPU may
/// not have the instruction otherwise), as Linux's alternatives patch it in.
#[no_mangle]
static smap_enabled: AtomicBool = AtomicBool::new(false);

/// Whether SMAP is on.
pub fn smap_on() -> bool {
    smap_enabled.load(Ordering::Relaxed)
}

/// Whether SMEP is on.
pub fn smep_on() -> bool {
    read_cr4() & CR4_SMEP != 0
}

/// Turn on SMEP and SMAP where the CPU has them, then tell the uaccess primitives to
/// bracket user accesses with STAC/CLAC. Returns (smep, smap).
pub fn enable_smep_smap() -> (bool, bool) {
    let (smep, smap) = (has_smep(), has_smap());
    if smep {
        // SAFETY: supported; the kernel never executes from user pages on purpose.
        unsafe { set_cr4(CR4_SMEP) };
    }
    if smap {
        // SAFETY: supported; from here on user accesses go through STAC/CLAC.
        unsafe { set_cr4(CR4_SMAP) };
        extable_runtime::uaccess::arch::set_smap(true);
        smap_enabled.store(true, Ordering::Relaxed);
    }
    (smep, smap)
}

/// Whether this CPU has SMEP and SMAP on exactly where the boot CPU turned them on.
pub fn protections_like_boot_cpu() -> bool {
    let cr4 = read_cr4();
    (cr4 & CR4_SMEP != 0) == has_smep() && (cr4 & CR4_SMAP != 0) == smap_on()
}

/// On a CPU started after the boot CPU: turn on what [`enable_smep_smap`] turned on there.
pub fn enable_smep_smap_like_boot_cpu() {
    if has_smep() {
        // SAFETY: supported; as on the boot CPU.
        unsafe { set_cr4(CR4_SMEP) };
    }
    if smap_on() {
        // SAFETY: supported (the boot CPU has it, and the CPUs are alike); the uaccess
        // primitives already bracket user accesses with STAC/CLAC.
        unsafe { set_cr4(CR4_SMAP) };
    }
}
