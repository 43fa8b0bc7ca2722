//! Picks the linker script for the target architecture and hands it to the linker by
//! absolute path.

use std::path::PathBuf;

fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let script = match arch.as_str() {
        "x86_64" => "x86_64.ld",
        "arm" => "armv7.ld",
        "aarch64" => "aarch64.ld",
        other => panic!("demo kernel: no linker script for target arch {other:?}"),
    };
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let path = dir.join(script);
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rustc-link-arg-bins=-T{}", path.display());
}
