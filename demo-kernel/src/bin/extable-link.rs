//! `extable-link`: a linker for cargo's `target.<triple>.linker` that runs the real linker
//! (`$EXTABLE_TOOL_LINKER`, default `rust-lld`) with the same arguments, then sorts and
//! checks `__ex_table` in the output in place through `extable_tool::link`. The kernel build
//! of the harness uses it, so the kernels it boots come out of the linker sorted and checked.
//!
//! Exit status: the linker's when it fails (128+N when signal N killed it); 0 when the
//! output is sorted (or has no table); otherwise extable-tool's (1 refused by a check, 2
//! unreadable).

use std::ffi::OsString;
use std::process::ExitCode;

use extable_tool::link::{self, LinkOutcome};
use extable_tool::Options;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let linker = std::env::var_os(link::LINKER_ENV).unwrap_or_else(|| link::DEFAULT_LINKER.into());
    let code = match link::link(&linker, &args, &Options::default()) {
        Ok(LinkOutcome::LinkerFailed(code)) => code,
        Ok(LinkOutcome::LinkerKilled(signal)) => {
            eprintln!(
                "extable-link: {} killed by signal {signal}",
                linker.to_string_lossy()
            );
            128 + signal
        }
        Ok(LinkOutcome::DefaultOutputUnchanged(out)) => {
            eprintln!(
                "extable-link: no -o given and the linker did not write {}: nothing sorted",
                out.display()
            );
            0
        }
        Ok(LinkOutcome::NoTable(out)) => {
            eprintln!(
                "extable-link: {}: no __ex_table, nothing to sort",
                out.display()
            );
            0
        }
        Ok(LinkOutcome::Sorted(outcome)) => {
            for line in outcome.report.lines() {
                eprintln!("{line}");
            }
            0
        }
        Ok(_) => 0,
        Err(e) => {
            if let Some(report) = &e.report {
                for line in report.lines() {
                    eprintln!("{line}");
                }
            }
            eprintln!("extable-link: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
