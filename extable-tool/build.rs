//! Link the `extable-tool` program to start fast on GNU/Linux, where a build runs it on
//! every link and its whole run is a few milliseconds.
//!
//! * Rust's standard library takes its unwinder from the shared `libgcc_s.so.1`; loading
//!   that library is a tenth of a millisecond at every start. Linked in whole from
//!   `libgcc_eh.a` (what `-C target-feature=+crt-static` links), the unwinder's symbols
//!   resolve to the program itself, and `--as-needed` (which rustc passes) drops
//!   `libgcc_s.so.1`. When the C compiler has the archive, and the build is not static
//!   (`+crt-static` links the archive already).
//! * The program's 5,000 relative relocations are packed (`DT_RELR`): the dynamic loader
//!   reads 1 KiB instead of 120 KiB. When the C library is glibc 2.36 or later, which
//!   applies them (older ones refuse such a program).
//!
//! Only for a native build; otherwise the program links as usual.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target != host || !target.ends_with("-linux-gnu") {
        return;
    }
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    if let Some(archive) = libgcc_eh().filter(|_| !crt_static) {
        let archive = archive.display();
        for arg in [
            "-Wl,--whole-archive".to_string(),
            format!("{archive}"),
            "-Wl,--no-whole-archive".to_string(),
        ] {
            println!("cargo:rustc-link-arg-bin=extable-tool={arg}");
        }
    }
    if glibc_version().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bin=extable-tool=-Wl,-z,pack-relative-relocs");
    }
}

/// The version of the C library this machine runs, if it is glibc.
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The C compiler's `libgcc_eh.a`, if it has one.
fn libgcc_eh() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
