//! `demo`: the README's main job. For each architecture: build the kernel (linked through
//! `extable-link`, so extable-tool sorts and checks its table in the link), run extable-tool's
//! `check` and `dump` on it, boot it in QEMU, print the transcript, then boot each dedicated
//! (oops) scenario on its own; finish with a summary. Exit status 0 when everything passed,
//! 1 when a scenario failed or a boot ended wrongly, 2 when a kernel could not be built.
//!
//! Usage: `demo [x86_64|armv7|aarch64]...` (default: every architecture).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use demo_kernel::{
    boot, build_kernel, Arch, Boot, BootEnd, KernelExit, Verdict, DEDICATED_TIMEOUT, DEFAULT_CPUS,
    MAIN_TIMEOUT,
};

/// `extable-link`, built next to this binary: without it the kernels would link unsorted,
/// and the demo would not show what it claims to, so it is required.
fn linker_wrapper() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate the demo binary: {e}"))?;
    let p = exe.with_file_name("extable-link");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build --release -p demo-kernel --bins` (scripts/demo.sh does)",
            p.display()
        ))
    }
}

/// Print `extable-tool check` and `dump` of the kernel; `false` when the check finds errors.
fn check_and_dump(kernel: &Path) -> bool {
    let opts = extable_tool::Options::default();
    println!("$ extable-tool check {}", kernel.display());
    let clean = match extable_tool::check_file(kernel, &opts) {
        Ok(report) => {
            for l in report.lines() {
                println!("{l}");
            }
            println!("{}", report.summary());
            !report.has_errors()
        }
        Err(e) => {
            println!("{e}");
            false
        }
    };
    println!("$ extable-tool dump {}", kernel.display());
    match extable_tool::dump_file(kernel, &opts, true) {
        Ok(d) => d.lines().iter().for_each(|l| println!("{l}")),
        Err(e) => println!("{e}"),
    }
    clean
}

fn print_boot(title: &str, b: &Boot) {
    println!("---- {title} ----");
    print!("{}", b.transcript);
    println!(
        "---- ended {:?} after {:.1} ms wall clock{} ----",
        b.end,
        b.wall.as_secs_f64() * 1e3,
        b.to_done.map_or(String::new(), |t| format!(
            " (DONE line after {:.1} ms)",
            t.as_secs_f64() * 1e3
        ))
    );
}

/// Build, check, boot one architecture; returns (passed, failed) checks.
fn run_arch(arch: Arch) -> Result<(usize, usize), String> {
    println!("==== {} ====", arch.name());
    let kernel = build_kernel(arch, Some(&linker_wrapper()?))?;
    let (mut pass, mut fail) = (0, 0);
    let mut tally = |ok: bool, what: &str| {
        if ok {
            pass += 1;
        } else {
            fail += 1;
            println!("!! FAILED: {what}");
        }
    };
    tally(check_and_dump(&kernel), "extable-tool check");
    let main = boot(arch, &kernel, "", MAIN_TIMEOUT)?;
    print_boot(&format!("{} main boot", arch.name()), &main);
    for r in main.results() {
        tally(r.verdict == Verdict::Pass, &r.scenario);
    }
    tally(
        main.end == BootEnd::Kernel(KernelExit::Passed),
        "main boot exit status",
    );
    if let Some(d) = main.done() {
        println!(
            "{}: {} scenarios, {} failed; kernel clock {:.1} ms from entry to DONE",
            arch.name(),
            d.total,
            d.failed,
            d.micros as f64 / 1e3
        );
    }
    match main.check_smp_fixups(DEFAULT_CPUS) {
        Ok(s) => println!(
            "{}: smp_fixups on {} CPUs at once: {} held in the fixup path together, faults per CPU {:?}, wrong {}, recursive {}, {} module cycles",
            arch.name(),
            s.cpus,
            s.held,
            s.faults,
            s.wrong,
            s.recursive,
            s.module_cycles
        ),
        Err(why) => println!("{}: {why}", arch.name()),
    }
    tally(
        main.check_smp_fixups(DEFAULT_CPUS).is_ok(),
        "smp_fixups on every CPU",
    );
    for d in arch.dedicated() {
        let b = boot(
            arch,
            &kernel,
            &format!("scenario={}", d.name),
            DEDICATED_TIMEOUT,
        )?;
        print_boot(&format!("{} scenario={}", arch.name(), d.name), &b);
        let verdict = d.judge(&b);
        if let Err(why) = &verdict {
            println!("{}: {why}", d.name);
        }
        tally(verdict.is_ok(), d.name);
    }
    Ok((pass, fail))
}

fn main() -> ExitCode {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let arches: Vec<Arch> = Arch::ALL
        .into_iter()
        .filter(|a| wanted.is_empty() || wanted.iter().any(|w| w == a.name()))
        .collect();
    let mut status = 0u8;
    let mut summary = Vec::new();
    for arch in arches {
        match run_arch(arch) {
            Ok((p, f)) => {
                summary.push(format!("{}: {p} checks passed, {f} failed", arch.name()));
                if f > 0 {
                    status = status.max(1);
                }
            }
            Err(e) => {
                summary.push(format!("{}: {e}", arch.name()));
                status = 2;
            }
        }
    }
    println!("==== summary ====");
    summary.iter().for_each(|s| println!("{s}"));
    ExitCode::from(status)
}
