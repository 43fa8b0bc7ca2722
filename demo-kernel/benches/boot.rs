//! Boot time of the demo kernels under TCG ("boot to the last scenario in under 1 s"; the
//! AArch64 kernel with its two CPUs). Boots each kernel with every scenario and, as the
//! baseline in the same run, the same kernel with `noscenarios` (firmware, entry, MMU,
//! DONE); prints the
//! median wall-clock time from starting QEMU to the `DONE` line, the kernel's own clock, and
//! the ratio. Run: `cargo bench -p demo-kernel --bench boot`.

use std::path::Path;
use std::time::Duration;

use demo_kernel::{boot, build_kernel, Arch, BootEnd, KernelExit, MAIN_TIMEOUT};

const RUNS: usize = 7;
const TARGET: Duration = Duration::from_secs(1);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Boot `RUNS` times with `cmdline`; (median wall to DONE, median kernel microseconds).
fn measure(arch: Arch, kernel: &Path, cmdline: &str) -> (Duration, u64) {
    let mut walls = Vec::new();
    let mut micros = Vec::new();
    for _ in 0..RUNS {
        let b = boot(arch, kernel, cmdline, MAIN_TIMEOUT).expect("boot");
        assert_eq!(
            b.end,
            BootEnd::Kernel(KernelExit::Passed),
            "{}",
            b.transcript
        );
        walls.push(b.to_done.expect("DONE line"));
        micros.push(Duration::from_micros(b.done().expect("DONE").micros));
    }
    (median(walls), median(micros).as_micros() as u64)
}

fn main() {
    for arch in Arch::ALL {
        bench(arch);
    }
}

fn bench(arch: Arch) {
    let wrapper = Path::new(env!("CARGO_BIN_EXE_extable-link"));
    let kernel = build_kernel(arch, Some(wrapper)).unwrap_or_else(|e| panic!("{e}"));
    let (base_wall, base_kernel) = measure(arch, &kernel, "noscenarios");
    let (full_wall, full_kernel) = measure(arch, &kernel, "");
    println!(
        "{} boot under TCG, median of {RUNS} boots (QEMU start to the DONE line):",
        arch.name()
    );
    println!(
        "  baseline (no scenarios): {:8.1} ms wall, {:6.1} ms kernel clock",
        base_wall.as_secs_f64() * 1e3,
        base_kernel as f64 / 1e3
    );
    println!(
        "  all scenarios:           {:8.1} ms wall, {:6.1} ms kernel clock",
        full_wall.as_secs_f64() * 1e3,
        full_kernel as f64 / 1e3
    );
    println!(
        "  ratio all/baseline: {:.2}x; target < {:?}: {}",
        full_wall.as_secs_f64() / base_wall.as_secs_f64(),
        TARGET,
        if full_wall < TARGET { "met" } else { "MISSED" }
    );
}
