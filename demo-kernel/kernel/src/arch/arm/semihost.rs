//! ARM semihosting (QEMU `-semihosting`): the exit with a status.

/// `SYS_EXIT_EXTENDED`: exit with a reason and a subcode (the status).
const SYS_EXIT_EXTENDED: u32 = 0x20;
/// `ADP_Stopped_ApplicationExit`: the program ended normally; the subcode is its status.
const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x2_0026;

/// Stop QEMU with exit status `code` (0 = success). Without `-semihosting` the `svc` is an
/// ordinary SWI from SVC mode, which the kernel reports as a bug and halts on; the
/// harness's timeout catches that.
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code];
    // SAFETY: the semihosting call reads the two-word block r1 points to and stops the
    // machine; the kernel is identity-mapped, so the virtual address QEMU reads is valid.
    unsafe {
        core::arch::asm!(
            "svc 0x123456",
            in("r0") SYS_EXIT_EXTENDED,
            in("r1") block.as_ptr(),
            options(nostack),
        );
    }
    loop {
        // SAFETY: waiting for an interrupt that never comes; nothing else to do.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }
}
