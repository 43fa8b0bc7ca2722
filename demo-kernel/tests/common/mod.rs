//! What the kernel test binaries share (each binary tests one architecture): the kernel built
//! once (release, linked through `extable-link`, so extable-tool sorts and checks its table in
//! the link), the main boot run once, and dedicated boots judged by the harness.

// Each binary uses the part it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use demo_kernel::{
    boot, boot_with_cpus, build_kernel, Arch, Boot, BootEnd, KernelExit, DEDICATED_TIMEOUT,
    MAIN_TIMEOUT,
};

/// The kernel for `arch`, built on first use (one architecture per test binary).
pub fn kernel(arch: Arch) -> &'static Path {
    static KERNEL: OnceLock<PathBuf> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let linker = Path::new(env!("CARGO_BIN_EXE_extable-link"));
        build_kernel(arch, Some(linker)).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The main boot (every non-dedicated scenario, the harness's default CPU count), run on
/// first use; its transcript is printed (shown for failing tests).
pub fn main_boot(arch: Arch) -> &'static Boot {
    static BOOT: OnceLock<Boot> = OnceLock::new();
    BOOT.get_or_init(|| {
        let b = boot(arch, kernel(arch), "", MAIN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        println!("{}", b.transcript);
        b
    })
}

/// Boot dedicated scenario `name` alone and judge it by the harness's expectations.
pub fn dedicated(arch: Arch, name: &str) -> Boot {
    let d = arch
        .dedicated()
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} is not a dedicated {} scenario", arch.name()));
    let b = boot(
        arch,
        kernel(arch),
        &format!("scenario={name}"),
        DEDICATED_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", b.transcript);
    if let Err(why) = d.judge(&b) {
        panic!("{name}: {why}\n{}", b.transcript);
    }
    b
}

/// [`dedicated`], which must also end in an oops after running that one scenario.
pub fn dedicated_oops(arch: Arch, name: &str) -> Boot {
    let b = dedicated(arch, name);
    assert_eq!(b.end, BootEnd::Kernel(KernelExit::Oops), "{}", b.transcript);
    assert_eq!(
        b.results().len(),
        1,
        "a dedicated boot runs one scenario\n{}",
        b.transcript
    );
    b
}

/// A boot on one CPU: the kernel starts nobody, and every scenario of the main boot still
/// passes (`smp_fixups` with `cpus=1`).
pub fn one_cpu_boot(arch: Arch) -> Boot {
    let b =
        boot_with_cpus(arch, kernel(arch), "", 1, MAIN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        b.end,
        BootEnd::Kernel(KernelExit::Passed),
        "{}",
        b.transcript
    );
    let done = b.done().expect("DONE line");
    assert_eq!(
        (done.total, done.failed),
        (main_boot(arch).done().expect("DONE line").total, 0),
        "{}",
        b.transcript
    );
    b.expect_smp_fixups(1);
    b
}
