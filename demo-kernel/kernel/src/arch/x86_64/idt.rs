//! The IDT: every vector has a stub (see [`super::entry`]); #DF runs on its IST stack; the
//! `int 0x80` gate is open to user mode.

use core::mem::size_of;
use core::sync::atomic::{AtomicU64, Ordering};

use super::entry::{exception_stubs, int80_stub, irq_stub};
use super::gdt::{IST_DF, KERNEL_CS};
use crate::cell::Global;

/// The system-call vector.
pub const SYSCALL_VECTOR: usize = 0x80;

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    zero: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        zero: 0,
    };

    /// A present 64-bit interrupt gate (IF cleared on entry) to `handler`.
    fn interrupt(handler: usize, ist: u8, dpl: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist,
            type_attr: 0x8e | (dpl << 5),
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            zero: 0,
        }
    }
}

static IDT: Global<[Gate; 256]> = Global::new([Gate::MISSING; 256]);

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// The IDT's address, for the CPUs started after [`init`].
static IDT_BASE: AtomicU64 = AtomicU64::new(0);

/// Fill in the IDT (once, on the boot CPU) and load it.
pub fn init() {
    let base = IDT.with(|idt| {
        for (v, stub) in exception_stubs().iter().enumerate() {
            let ist = if v == 8 { IST_DF } else { 0 };
            idt[v] = Gate::interrupt(*stub as usize, ist, 0);
        }
        for (v, gate) in idt.iter_mut().enumerate().skip(32) {
            *gate = Gate::interrupt(irq_stub(v), 0, 0);
        }
        idt[SYSCALL_VECTOR] = Gate::interrupt(int80_stub(), 0, 3);
        idt.as_ptr() as u64
    });
    IDT_BASE.store(base, Ordering::Release);
    load_on_this_cpu(base);
}

/// Load the IDT [`init`] filled on a CPU started later (every CPU shares it).
pub fn load() {
    load_on_this_cpu(IDT_BASE.load(Ordering::Acquire));
}

fn load_on_this_cpu(base: u64) {
    let ptr = DescriptorPointer {
        limit: (size_of::<[Gate; 256]>() - 1) as u16,
        base,
    };
    // SAFETY: the IDT is static, complete, and its gates point at the stubs.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &ptr, options(nostack, preserves_flags)) };
}
