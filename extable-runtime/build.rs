//! Puts `link/` on the linker's search path, so that a kernel's linker script can
//! `INCLUDE extable-<arch>.ld` by name.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let link = dir.join("link");
    println!("cargo:rerun-if-changed=link");
    println!("cargo:rustc-link-search=native={}", link.display());
}
