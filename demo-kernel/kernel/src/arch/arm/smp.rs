//! Secondary CPUs through PSCI `CPU_ON` (the HVC conduit QEMU's `virt` emulates for a
//! kernel booted without secure firmware). CPU `n` is the one whose MPIDR affinity 0 is `n`
//! (QEMU `virt`'s numbering); it starts at `arm_secondary_entry` in entry.S with its number
//! as the context id, takes its own stacks, vectors and TPIDRPRW there, then turns its MMU on
//! in [`arm_secondary_start`].

use super::mmu;
use crate::percpu;

/// PSCI 0.2 `CPU_ON`, SMC32 calling convention.
const PSCI_CPU_ON: u32 = 0x8400_0003;
/// PSCI success.
const PSCI_SUCCESS: i32 = 0;
/// How long to wait for the started CPUs to check in, in microseconds.
const ONLINE_TIMEOUT_US: u64 = 1_000_000;

extern "C" {
    fn arm_secondary_entry();
}

/// This CPU's number, from TPIDRPRW (set by the boot code of every CPU before it can fault).
pub fn cpu_id() -> usize {
    let cpu: usize;
    // SAFETY: reads TPIDRPRW, a PL1-only software register.
    unsafe {
        core::arch::asm!(
            "mrc p15, 0, {}, c13, c0, 4",
            out(reg) cpu,
            options(nomem, nostack, preserves_flags)
        )
    };
    cpu
}

/// `CPU_ON(target, entry, context)` through the hypervisor call; PSCI's return code.
fn psci_cpu_on(target_mpidr: u32, entry: usize, context: usize) -> i32 {
    let ret: i32;
    // SAFETY: a PSCI call (QEMU's emulation): it only powers on the target CPU at `entry`,
    // which is arm_secondary_entry, ready for a CPU with the MMU off.
    unsafe {
        core::arch::asm!(
            ".inst 0xe1400070", // hvc #0 (assembled without the virtualization extensions)
            inlateout("r0") PSCI_CPU_ON => ret,
            in("r1") target_mpidr,
            in("r2") entry,
            in("r3") context,
            options(nostack)
        )
    };
    ret
}

/// Start CPUs 1, 2, ... until PSCI refuses one (there is no such CPU); returns how many
/// CPUs are online.
pub fn start_secondaries(entry: fn(usize)) -> usize {
    let entry_pa = arm_secondary_entry as *const () as usize;
    percpu::start_numbered(entry, ONLINE_TIMEOUT_US, "PSCI CPU_ON (hvc)", |cpu| {
        psci_cpu_on(cpu as u32, entry_pa, cpu) == PSCI_SUCCESS
    })
}

/// The Rust entry of a secondary CPU, on its own SVC stack with its vectors installed.
#[no_mangle]
extern "C" fn arm_secondary_start(cpu: usize) -> ! {
    mmu::enable();
    percpu::secondary_main(cpu);
    loop {
        // SAFETY: waiting for an interrupt with interrupts masked parks this CPU.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }
}
