//! Host harness for the demo kernels (x86_64, ARMv7-A, AArch64): build a kernel with cargo (linked
//! through `extable-link`, so its table comes out of the link sorted and checked by
//! extable-tool), boot it in QEMU with a timeout, and parse its machine-readable lines.
//!
//! The kernel prints one `RESULT <scenario> PASS|FAIL|OOPS <detail>` line per scenario and,
//! when it runs to the end, `DONE <n> scenarios, <fails> failed, <t> us`. Its exit status
//! says how it stopped ([`KernelExit`]); the emulator's status is decoded per architecture
//! and a reset, a triple fault, a signal or a timeout is never read as success.

#![warn(missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The architectures of the demo kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86_64, booted through PVH by `qemu-system-x86_64 -kernel`.
    X86_64,
    /// ARMv7-A on QEMU `virt` with a Cortex-A15.
    Armv7,
    /// AArch64 on QEMU `virt` with `-cpu max` (PAN), two CPUs.
    Aarch64,
}

/// How the kernel said it stopped (the code it handed to the exit device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelExit {
    /// Every scenario passed.
    Passed,
    /// At least one scenario failed.
    Failed,
    /// The oops path ran.
    Oops,
    /// A Rust panic.
    Panic,
}

impl KernelExit {
    /// The kernel's code for this exit (its `report::ExitCode`).
    pub fn code(self) -> u32 {
        match self {
            KernelExit::Passed => 0,
            KernelExit::Failed => 1,
            KernelExit::Oops => 2,
            KernelExit::Panic => 3,
        }
    }

    fn from_code(code: u32) -> Option<KernelExit> {
        [
            KernelExit::Passed,
            KernelExit::Failed,
            KernelExit::Oops,
            KernelExit::Panic,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// How a boot ended, as the harness sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootEnd {
    /// The kernel exited through the exit device with this code.
    Kernel(KernelExit),
    /// The emulator exited 0 on x86_64: a reset or triple fault under `-no-reboot`; the
    /// isa-debug-exit device can never produce 0.
    ResetOrTripleFault,
    /// The emulator exited with a status no kernel exit produces.
    Unknown(i32),
    /// The emulator was killed by a signal.
    Signalled,
    /// The boot did not end within the timeout; the emulator was killed.
    Timeout,
}

impl Arch {
    /// Every architecture, in the order the demo runs them.
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::Armv7, Arch::Aarch64];

    /// Short name ("x86_64", "armv7", "aarch64").
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Armv7 => "armv7",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The rustup target the kernel is built for.
    pub fn target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-none",
            Arch::Armv7 => "armv7a-none-eabi",
            Arch::Aarch64 => "aarch64-unknown-none",
        }
    }

    /// The QEMU command that boots `kernel` with [`DEFAULT_CPUS`] CPUs, with `cmdline` as the
    /// kernel command line.
    pub fn qemu(self, kernel: &Path, cmdline: &str) -> Command {
        self.qemu_with_cpus(kernel, cmdline, DEFAULT_CPUS)
    }

    /// The QEMU command that boots `kernel` on `cpus` CPUs, with `cmdline` as the kernel
    /// command line: TCG with one host thread per CPU (so that the CPUs really run at the
    /// same time), no reboot, serial on stdout, stdin closed by the caller.
    pub fn qemu_with_cpus(self, kernel: &Path, cmdline: &str, cpus: usize) -> Command {
        let mut c;
        match self {
            Arch::X86_64 => {
                c = Command::new("qemu-system-x86_64");
                c.args(["-M", "microvm", "-cpu", "max", "-m", "128M"]);
                c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
            }
            Arch::Armv7 => {
                c = Command::new("qemu-system-arm");
                c.args(["-M", "virt", "-cpu", "cortex-a15", "-m", "128M"]);
                c.arg("-semihosting");
            }
            Arch::Aarch64 => {
                c = Command::new("qemu-system-aarch64");
                c.args(["-M", "virt", "-cpu", "max", "-m", "128M"]);
                c.arg("-semihosting");
            }
        }
        c.args(["-smp", &cpus.to_string()]);
        c.args([
            "-accel",
            "tcg,thread=multi",
            "-no-reboot",
            "-nographic",
            "-monitor",
            "none",
        ]);
        c.args(["-serial", "stdio", "-display", "none"]);
        c.arg("-kernel").arg(kernel);
        if !cmdline.is_empty() {
            c.args(["-append", cmdline]);
        }
        c
    }

    /// Decode the emulator's exit status.
    pub fn decode_status(self, status: ExitStatus) -> BootEnd {
        let Some(code) = status.code() else {
            return BootEnd::Signalled;
        };
        match self {
            // isa-debug-exit: the kernel writes v, QEMU exits with (v << 1) | 1.
            Arch::X86_64 => match code {
                0 => BootEnd::ResetOrTripleFault,
                c if c & 1 == 1 => KernelExit::from_code((c >> 1) as u32)
                    .map_or(BootEnd::Unknown(c), BootEnd::Kernel),
                c => BootEnd::Unknown(c),
            },
            // Semihosting SYS_EXIT_EXTENDED (ARM) / SYS_EXIT (AArch64): QEMU exits with the
            // kernel's code.
            Arch::Armv7 | Arch::Aarch64 => {
                KernelExit::from_code(code as u32).map_or(BootEnd::Unknown(code), BootEnd::Kernel)
            }
        }
    }
}

/// A scenario that needs a boot of its own (selected with `scenario=NAME` on the kernel
/// command line) and how that boot must end.
#[derive(Clone, Copy, Debug)]
pub struct Dedicated {
    /// The scenario name.
    pub name: &'static str,
    /// How the boot must end.
    pub end: BootEnd,
    /// Text the console must show.
    pub expect: &'static [&'static str],
}

const X86_DEDICATED: &[Dedicated] = &[
    Dedicated {
        name: "oops_null",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "#PF: supervisor read access in kernel mode",
            "#PF: error_code(0x0000) - not-present page",
            "RIP: 0010:",
            "RESULT oops_null OOPS",
        ],
    },
    Dedicated {
        name: "oops_vmalloc",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "BUG: unable to handle page fault for address: ffffc9",
            "#PF: error_code(0x0000) - not-present page",
            "RESULT oops_vmalloc OOPS",
        ],
    },
    Dedicated {
        name: "oops_smap",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "SMAP violation: kernel read of user address",
            "BUG: unable to handle page fault for address: 0000000000600000",
            "#PF: error_code(0x0001) - permissions violation",
            "RESULT oops_smap OOPS",
        ],
    },
    Dedicated {
        name: "oops_smep",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "unable to execute userspace code (SMEP?)",
            "#PF: supervisor instruction fetch in kernel mode",
            "#PF: error_code(0x0011) - permissions violation",
            "RESULT oops_smep OOPS",
        ],
    },
    Dedicated {
        name: "double_fault",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "on the IST stack",
            ": yes",
            "PANIC: double fault",
            "RESULT double_fault OOPS",
        ],
    },
    Dedicated {
        name: "bug_ud2",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "kernel BUG at",
            "invalid opcode: 0000 [#1]",
            "RESULT bug_ud2 OOPS",
        ],
    },
    Dedicated {
        name: "triple_fault",
        end: BootEnd::ResetOrTripleFault,
        expect: &["triple fault: loading an empty IDT"],
    },
    Dedicated {
        name: "hang",
        end: BootEnd::Timeout,
        expect: &["hang: spinning with interrupts masked"],
    },
];

const ARMV7_DEDICATED: &[Dedicated] = &[
    Dedicated {
        name: "arm_oops_null",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unable to handle kernel NULL pointer dereference at virtual address 00000000",
            "[00000000] *pgd=00000000",
            "Internal error: Oops: 5 [#1] ARM",
            "Mode SVC_32  ISA ARM",
            "RESULT arm_oops_null OOPS",
        ],
    },
    Dedicated {
        name: "arm_oops_paging",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unable to handle kernel paging request at virtual address eff00123",
            "[eff00123] *pgd=00000000",
            "Internal error: Oops: 5 [#1] ARM",
            "RESULT arm_oops_paging OOPS",
        ],
    },
    Dedicated {
        name: "arm_oops_undef",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Internal error: Oops - undefined instruction: 0 [#1] ARM",
            "Mode SVC_32  ISA ARM",
            "RESULT arm_oops_undef OOPS",
        ],
    },
    Dedicated {
        name: "arm_oops_pabt",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unable to handle kernel paging request at virtual address 47fff000",
            "Internal error: Oops: 8000000d [#1] ARM",
            "PC is at 0x47fff000",
            "Mode SVC_32  ISA ARM",
            "RESULT arm_oops_pabt OOPS",
        ],
    },
];

const AARCH64_DEDICATED: &[Dedicated] = &[
    Dedicated {
        name: "aarch64_oops_null",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000",
            "Mem abort info:",
            "  ESR = 0x0000000096000005",
            "  EC = 0x25: DABT (current EL), IL = 32 bits",
            "  SET = 0, FnV = 0",
            "  EA = 0, S1PTW = 0",
            "  FSC = 0x05: level 1 translation fault",
            "Data abort info:",
            "  CM = 0, WnR = 0, TnD = 0, TagAccess = 0",
            "[0000000000000000] user address but active_mm is swapper",
            "Internal error: Oops: 0000000096000005 [#1] SMP",
            "+PAN",
            "Kernel panic - not syncing: Oops: Fatal exception",
            "RESULT aarch64_oops_null OOPS",
        ],
    },
    Dedicated {
        name: "aarch64_oops_paging",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unable to handle kernel paging request at virtual address ffffff80c0000000",
            "  FSC = 0x05: level 1 translation fault",
            "swapper pgtable: 4k pages, 39-bit VAs, pgdp=",
            "[ffffff80c0000000] pgd=0000000000000000, p4d=0000000000000000, pud=0000000000000000\n",
            "Internal error: Oops: 0000000096000005 [#1] SMP",
            "RESULT aarch64_oops_paging OOPS",
        ],
    },
    Dedicated {
        name: "aarch64_oops_pan",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unable to handle kernel access to user memory outside uaccess routines at virtual address 0000000000100000",
            "  ESR = 0x000000009600000f",
            "  FSC = 0x0f: level 3 permission fault",
            "user pgtable: 4k pages, 39-bit VAs, pgdp=",
            "[0000000000100000] pgd=",
            ", pte=",
            "Internal error: Oops: 000000009600000f [#1] SMP",
            "+PAN",
            "RESULT aarch64_oops_pan OOPS",
        ],
    },
    Dedicated {
        name: "aarch64_oops_exec_user",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unable to handle kernel execution of user memory at virtual address 0000000000010000",
            "  EC = 0x21: IABT (current EL), IL = 32 bits",
            "  FSC = 0x0f: level 3 permission fault",
            "Internal error: Oops: 000000008600000f [#1] SMP",
            "pc : 0000000000010000",
            "BTYPE=-c)",
            "RESULT aarch64_oops_exec_user OOPS",
        ],
    },
    Dedicated {
        name: "aarch64_oops_bug",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "------------[ cut here ]------------",
            "kernel BUG at src/arch/aarch64/scenarios.rs:",
            "Internal error: Oops - BUG: 00000000f2000800 [#1] SMP",
            "RESULT aarch64_oops_bug OOPS",
        ],
    },
    Dedicated {
        name: "aarch64_oops_undef",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Internal error: Oops - Undefined instruction: 0000000002000000 [#1] SMP",
            "RESULT aarch64_oops_undef OOPS",
        ],
    },
    Dedicated {
        name: "aarch64_oops_bad_vector",
        end: BootEnd::Kernel(KernelExit::Oops),
        expect: &[
            "Unhandled 64-bit el1t sync exception on CPU0, ESR 0x00000000f2000001 -- BRK (AArch64)",
            "Internal error: Oops - unhandled exception: 00000000f2000001 [#1] SMP",
            "RESULT aarch64_oops_bad_vector OOPS",
        ],
    },
];

impl Arch {
    /// The scenarios of `arch` that need their own boot, with how each must end.
    pub fn dedicated(self) -> &'static [Dedicated] {
        match self {
            Arch::X86_64 => X86_DEDICATED,
            Arch::Armv7 => ARMV7_DEDICATED,
            Arch::Aarch64 => AARCH64_DEDICATED,
        }
    }
}

impl Dedicated {
    /// Whether `boot` ended as this scenario must; `Err` says what is wrong.
    pub fn judge(&self, boot: &Boot) -> Result<(), String> {
        if boot.end != self.end {
            return Err(format!("ended {:?}, expected {:?}", boot.end, self.end));
        }
        match self.expect.iter().find(|e| !boot.transcript.contains(*e)) {
            Some(missing) => Err(format!("the console lacks {missing:?}")),
            None => Ok(()),
        }
    }
}

/// How long a dedicated boot may take (the `hang` scenario is killed after it).
pub const DEDICATED_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the main boot may take.
pub const MAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The workspace's `demo-kernel/kernel` directory.
pub fn kernel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel")
}

/// Where the kernels are built: the kernel crate's own target directory (a nested cargo must
/// not share the outer build's directory and its lock).
pub fn kernel_target_dir() -> PathBuf {
    kernel_dir().join("target")
}

/// Environment variables of an outer cargo run that must not leak into the kernel build.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
];

/// Build the kernel for `arch` in release mode. With `linker`, cargo links through it
/// (`extable-link`: rust-lld, then extable-tool sorts and checks the table in the output).
/// Returns the kernel ELF, or cargo's output on failure.
pub fn build_kernel(arch: Arch, linker: Option<&Path>) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(kernel_dir())
        .args(["build", "--release", "--target", arch.target()])
        .env("CARGO_TARGET_DIR", kernel_target_dir())
        .stdin(Stdio::null());
    for v in SCRUBBED_ENV {
        c.env_remove(v);
    }
    if let Some(l) = linker {
        let var = format!(
            "CARGO_TARGET_{}_LINKER",
            arch.target().to_uppercase().replace('-', "_")
        );
        c.env(var, l);
    }
    let out = c
        .output()
        .map_err(|e| format!("cannot run cargo for the {} kernel: {e}", arch.name()))?;
    if !out.status.success() {
        return Err(format!(
            "building the {} kernel failed ({}):\n{}",
            arch.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(kernel_path(arch))
}

/// Where [`build_kernel`] puts the kernel for `arch`.
pub fn kernel_path(arch: Arch) -> PathBuf {
    kernel_target_dir()
        .join(arch.target())
        .join("release")
        .join("kernel")
}

/// One boot: what the console printed and how it ended.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The serial console, `\r` removed.
    pub transcript: String,
    /// How the boot ended.
    pub end: BootEnd,
    /// Wall-clock time from starting the emulator to its exit (or to the kill).
    pub wall: Duration,
    /// Wall-clock time from starting the emulator until the `DONE` line was read.
    pub to_done: Option<Duration>,
}

impl Boot {
    /// The parsed `RESULT` lines.
    pub fn results(&self) -> Vec<ResultLine> {
        parse_results(&self.transcript)
    }

    /// The `RESULT` line of `scenario`; panics with the transcript when it is missing or
    /// not unique (for tests).
    pub fn result(&self, scenario: &str) -> ResultLine {
        let found: Vec<_> = self
            .results()
            .into_iter()
            .filter(|r| r.scenario == scenario)
            .collect();
        assert!(
            found.len() == 1,
            "expected one RESULT line for {scenario}, found {}\n{}",
            found.len(),
            self.transcript
        );
        found.into_iter().next().unwrap()
    }

    /// The parsed `DONE` line.
    pub fn done(&self) -> Option<Done> {
        parse_done(&self.transcript)
    }

    /// The `RESULT` line of `scenario`, which must say PASS and whose detail must contain
    /// every one of `needles`; panics with the transcript otherwise (for tests).
    pub fn expect_pass(&self, scenario: &str, needles: &[&str]) -> ResultLine {
        let r = self.result(scenario);
        assert_eq!(
            r.verdict,
            Verdict::Pass,
            "{scenario}: {}\n{}",
            r.detail,
            self.transcript
        );
        for n in needles {
            assert!(
                r.detail.contains(n),
                "{scenario}: detail lacks {n:?}: {}",
                r.detail
            );
        }
        r
    }

    /// [`Boot::check_smp_fixups`], panicking with the transcript when it fails (for tests).
    pub fn expect_smp_fixups(&self, cpus: usize) -> SmpFixups {
        self.check_smp_fixups(cpus)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.transcript))
    }

    /// Panic with the transcript unless the console shows `text` (for tests).
    pub fn expect_console(&self, text: &str) {
        assert!(
            self.transcript.contains(text),
            "console lacks {text:?}\n{}",
            self.transcript
        );
    }
}

/// How many CPUs a boot has unless asked otherwise.
pub const DEFAULT_CPUS: usize = 2;

/// Boot `kernel` for `arch` with `cmdline` on [`DEFAULT_CPUS`] CPUs, killing the emulator
/// after `timeout`.
pub fn boot(arch: Arch, kernel: &Path, cmdline: &str, timeout: Duration) -> Result<Boot, String> {
    boot_with_cpus(arch, kernel, cmdline, DEFAULT_CPUS, timeout)
}

/// Boot `kernel` for `arch` with `cmdline` on `cpus` CPUs, killing the emulator after
/// `timeout`.
pub fn boot_with_cpus(
    arch: Arch,
    kernel: &Path,
    cmdline: &str,
    cpus: usize,
    timeout: Duration,
) -> Result<Boot, String> {
    let mut cmd = arch.qemu_with_cpus(kernel, cmdline, cpus);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let (lines, done_at) = read_console(&mut child, start);
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Drained on its own thread, so a chatty emulator never blocks on a full pipe.
    let err = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        err
    });
    let end = wait_with_timeout(&mut child, arch, start, timeout)?;
    let wall = start.elapsed();
    let mut transcript = lines.join();
    let err = err.join().unwrap_or_default();
    if !err.trim().is_empty() {
        transcript.push_str("[qemu stderr] ");
        transcript.push_str(&err);
    }
    Ok(Boot {
        transcript,
        end,
        wall,
        to_done: done_at.try_recv().ok(),
    })
}

/// The console reader: a thread that collects stdout lines and notes when `DONE` appears.
struct Lines(std::thread::JoinHandle<String>);

impl Lines {
    fn join(self) -> String {
        self.0.join().unwrap_or_default()
    }
}

fn read_console(child: &mut Child, start: Instant) -> (Lines, mpsc::Receiver<Duration>) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut text = String::new();
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let s = String::from_utf8_lossy(&line).replace('\r', "");
            if s.starts_with("DONE ") {
                let _ = tx.send(start.elapsed());
            }
            text.push_str(&s);
            line.clear();
        }
        text
    });
    (Lines(handle), rx)
}

fn wait_with_timeout(
    child: &mut Child,
    arch: Arch,
    start: Instant,
    timeout: Duration,
) -> Result<BootEnd, String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(arch.decode_status(status)),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(BootEnd::Timeout);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for qemu: {e}")),
        }
    }
}

/// A scenario's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It did what it should.
    Pass,
    /// It did not.
    Fail,
    /// It ended in the oops path (expected of the dedicated oops scenarios).
    Oops,
}

/// One `RESULT` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine {
    /// Scenario name.
    pub scenario: String,
    /// Verdict.
    pub verdict: Verdict,
    /// The rest of the line.
    pub detail: String,
}

/// Parse every `RESULT` line of a transcript (malformed ones are skipped).
pub fn parse_results(transcript: &str) -> Vec<ResultLine> {
    transcript.lines().filter_map(parse_result).collect()
}

fn parse_result(line: &str) -> Option<ResultLine> {
    let rest = line.strip_prefix("RESULT ")?;
    let mut parts = rest.splitn(3, ' ');
    let scenario = parts.next()?.to_string();
    let verdict = match parts.next()? {
        "PASS" => Verdict::Pass,
        "FAIL" => Verdict::Fail,
        "OOPS" => Verdict::Oops,
        _ => return None,
    };
    let detail = parts.next().unwrap_or("").to_string();
    Some(ResultLine {
        scenario,
        verdict,
        detail,
    })
}

/// The detail of the `smp_fixups` line:
/// `cpus=N faults=F0,F1,... held=H wrong=W recursive=R module_cycles=K ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmpFixups {
    /// CPUs online.
    pub cpus: usize,
    /// Memory faults each CPU took (and had fixed), by CPU number.
    pub faults: Vec<usize>,
    /// CPUs whose fault was fixed while every CPU was held inside the fixup path.
    pub held: usize,
    /// Outcomes that were not the expected ones (copies, probes, module lookups).
    pub wrong: usize,
    /// Faults the runtime refused as recursive.
    pub recursive: usize,
    /// Module load / trim / unload cycles completed.
    pub module_cycles: usize,
}

/// How many fixed faults each CPU must report in `smp_fixups` (the kernel's own bound).
pub const SMP_FAULTS_PER_CPU: usize = 10_000;

/// Parse the detail of an `smp_fixups` line; `None` when a field is missing or malformed.
pub fn parse_smp_fixups(detail: &str) -> Option<SmpFixups> {
    let field = |name: &str| {
        detail
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
    };
    let num = |name: &str| field(name)?.parse::<usize>().ok();
    let faults = field("faults")?
        .split(',')
        .map(|f| f.parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    Some(SmpFixups {
        cpus: num("cpus")?,
        faults,
        held: num("held")?,
        wrong: num("wrong")?,
        recursive: num("recursive")?,
        module_cycles: num("module_cycles")?,
    })
}

impl Boot {
    /// Check the `smp_fixups` line: PASS, `cpus` CPUs online, all of them held inside the
    /// fixup path at once, each with at least [`SMP_FAULTS_PER_CPU`] faults, no wrong outcome, no recursion report, at least one
    /// module cycle. `Err` says what is wrong.
    pub fn check_smp_fixups(&self, cpus: usize) -> Result<SmpFixups, String> {
        let r = self
            .results()
            .into_iter()
            .find(|r| r.scenario == "smp_fixups")
            .ok_or("no smp_fixups line")?;
        let s = parse_smp_fixups(&r.detail)
            .ok_or_else(|| format!("malformed smp_fixups line: {}", r.detail))?;
        let ok = r.verdict == Verdict::Pass
            && s.cpus == cpus
            && s.faults.len() == cpus
            && s.faults.iter().all(|&f| f >= SMP_FAULTS_PER_CPU)
            && s.held == cpus
            && s.wrong == 0
            && s.recursive == 0
            && s.module_cycles > 0;
        if ok {
            Ok(s)
        } else {
            Err(format!(
                "smp_fixups with {cpus} CPUs expected: {:?} {}",
                r.verdict, r.detail
            ))
        }
    }
}

/// The `DONE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// Scenarios run.
    pub total: usize,
    /// Scenarios failed.
    pub failed: usize,
    /// Microseconds from the kernel's entry to the line, by the kernel's clock.
    pub micros: u64,
}

/// Parse the `DONE <n> scenarios, <f> failed, <t> us` line.
pub fn parse_done(transcript: &str) -> Option<Done> {
    let line = transcript.lines().find_map(|l| l.strip_prefix("DONE "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [n, "scenarios,", f, "failed,", t, "us"] => Some(Done {
            total: n.parse().ok()?,
            failed: f.parse().ok()?,
            micros: t.parse().ok()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_parse() {
        let t =
            "noise\nRESULT a PASS x y\nRESULT b FAIL\nRESULT c OOPS page fault\nRESULT d MAYBE\n";
        let r = parse_results(t);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].scenario, "a");
        assert_eq!(r[0].detail, "x y");
        assert_eq!(r[1].verdict, Verdict::Fail);
        assert_eq!(r[2].verdict, Verdict::Oops);
    }

    #[test]
    fn done_line_parses() {
        let d = parse_done("x\nDONE 12 scenarios, 1 failed, 3456 us\n").unwrap();
        assert_eq!(
            d,
            Done {
                total: 12,
                failed: 1,
                micros: 3456
            }
        );
        assert!(parse_done("DONE soon").is_none());
    }

    #[test]
    fn smp_fixups_line_parses() {
        let s = parse_smp_fixups(
            "cpus=2 faults=10002,10040 held=2 wrong=0 recursive=1 module_cycles=7 lookups=9",
        )
        .unwrap();
        assert_eq!(s.cpus, 2);
        assert_eq!(s.faults, vec![10002, 10040]);
        assert_eq!(
            (s.held, s.wrong, s.recursive, s.module_cycles),
            (2, 0, 1, 7)
        );
        assert!(
            parse_smp_fixups("cpus=2 faults=1,x held=2 wrong=0 recursive=0 module_cycles=1")
                .is_none()
        );
        assert!(
            parse_smp_fixups("cpus=2 faults=1,2 wrong=0 recursive=0 module_cycles=1").is_none()
        );
    }

    #[test]
    fn x86_status_zero_is_never_success() {
        use std::os::unix::process::ExitStatusExt;
        let st = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(
            Arch::X86_64.decode_status(st(0)),
            BootEnd::ResetOrTripleFault
        );
        assert_eq!(
            Arch::X86_64.decode_status(st(1)),
            BootEnd::Kernel(KernelExit::Passed)
        );
        assert_eq!(
            Arch::X86_64.decode_status(st(5)),
            BootEnd::Kernel(KernelExit::Oops)
        );
        assert_eq!(Arch::X86_64.decode_status(st(2)), BootEnd::Unknown(2));
    }
}
