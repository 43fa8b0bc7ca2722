//! The GDT with Linux's segment layout, the TSS with the kernel stack for user-mode traps
//! (RSP0) and the double-fault stack (IST1): one of each per CPU (Linux's per-CPU
//! `gdt_page`, `cpu_tss_rw` and exception stacks).

use core::mem::size_of;

use crate::cell::PerCpu;

/// Kernel code selector (Linux's `__KERNEL_CS`).
pub const KERNEL_CS: u16 = 0x10;
/// Kernel data selector (`__KERNEL_DS`).
pub const KERNEL_DS: u16 = 0x18;
/// User data selector, RPL 3 (`__USER_DS`).
pub const USER_DS: u16 = 0x2b;
/// User 64-bit code selector, RPL 3 (`__USER_CS`).
pub const USER_CS: u16 = 0x33;
/// TSS selector.
const TSS_SEL: u16 = 0x40;

/// IST index (1-based, as in the IDT gate) of the double-fault stack.
pub const IST_DF: u8 = 1;

const STACK_SIZE: usize = 16384;

#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

/// The stack the CPU switches to on a trap from user mode (TSS.RSP0).
static TASK_STACK: PerCpu<Stack> = PerCpu::new(Stack([0; STACK_SIZE]));
/// The double-fault stack (TSS.IST1), so a #DF caused by a bad kernel stack still runs.
static DF_STACK: PerCpu<Stack> = PerCpu::new(Stack([0; STACK_SIZE]));

/// The 64-bit TSS.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

static TSS: PerCpu<Tss> = PerCpu::new(Tss {
    reserved0: 0,
    rsp: [0; 3],
    reserved1: 0,
    ist: [0; 7],
    reserved2: 0,
    reserved3: 0,
    iomap_base: size_of::<Tss>() as u16,
});

/// Null, kernel 32-bit code, kernel code, kernel data, user 32-bit code, user data, user
/// code, an unused slot and the two-slot TSS descriptor (selector 0x40), as Linux orders them.
static GDT: PerCpu<[u64; 10]> = PerCpu::new([
    0,
    0x00cf_9a00_0000_ffff,
    0x00af_9a00_0000_ffff,
    0x00cf_9200_0000_ffff,
    0x00cf_fa00_0000_ffff,
    0x00cf_f200_0000_ffff,
    0x00af_fa00_0000_ffff,
    0,
    0,
    0,
]);

/// The top of this CPU's `stack`.
fn stack_top(stack: &PerCpu<Stack>) -> u64 {
    stack.this_cpu_ptr() as u64 + STACK_SIZE as u64
}

/// This CPU's double-fault stack's address range, for the #DF handler's report.
pub fn df_stack_range() -> core::ops::Range<u64> {
    let top = stack_top(&DF_STACK);
    top - STACK_SIZE as u64..top
}

/// Encode a 64-bit available-TSS descriptor (two GDT slots).
fn tss_descriptor(base: u64, limit: u64) -> [u64; 2] {
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Load this CPU's GDT, reload the segment registers and the task register (with this
/// CPU's TSS: its own RSP0 and IST stacks). Runs once per CPU, after its GS base is set.
pub fn init() {
    let rsp0 = stack_top(&TASK_STACK);
    let ist1 = stack_top(&DF_STACK);
    let (tss, gdt) = (TSS.this_cpu_ptr(), GDT.this_cpu_ptr());
    // SAFETY: this CPU's TSS and GDT, touched by nobody else, and by this CPU only here
    // (before it loads them).
    let (tss, gdt) = unsafe { (&mut *tss, &mut *gdt) };
    tss.rsp[0] = rsp0;
    tss.ist[(IST_DF - 1) as usize] = ist1;
    let tss_base = tss as *mut Tss as u64;
    let [lo, hi] = tss_descriptor(tss_base, size_of::<Tss>() as u64 - 1);
    gdt[8] = lo;
    gdt[9] = hi;
    let gdt_base = gdt.as_ptr() as u64;
    let ptr = DescriptorPointer {
        limit: (size_of::<[u64; 10]>() - 1) as u16,
        base: gdt_base,
    };
    // SAFETY: this CPU's GDT is static and complete; the far return reloads CS with the kernel
    // code selector of the same layout the boot GDT used, and the data selectors follow.
    unsafe {
        core::arch::asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:e}",
            "mov es, {ds:e}",
            "mov ss, {ds:e}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = in(reg) u64::from(KERNEL_CS),
            ds = in(reg) u32::from(KERNEL_DS),
            tss = in(reg) TSS_SEL,
            tmp = out(reg) _,
        );
    }
}
