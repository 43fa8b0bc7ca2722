//! Link the `extable-tool` program with libgcc's unwinder as a static archive on GNU/Linux.
//!
//! Rust's standard library takes its unwinder from the shared `libgcc_s.so.1`; loading that
//! library is a tenth of a millisecond at every start, as long as sorting a small kernel's
//! table. Linked in whole from `libgcc_eh.a` (what `-C target-feature=+crt-static` links),
//! the unwinder's symbols resolve to the program itself, and `--as-needed` (which rustc
//! passes) drops `libgcc_s.so.1`. Only for a native build whose C compiler has the archive;
//! otherwise the program links as usual.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target != host || !target.ends_with("-linux-gnu") {
        return;
    }
    let Some(archive) = libgcc_eh() else {
        return;
    };
    let archive = archive.display();
    for arg in [
        "-Wl,--whole-archive".to_string(),
        format!("{archive}"),
        "-Wl,--no-whole-archive".to_string(),
    ] {
        println!("cargo:rustc-link-arg-bin=extable-tool={arg}");
    }
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
