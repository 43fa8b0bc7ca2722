//! Shared test helpers: synthetic ELF files, the sorttable oracle, running the binary.

#![allow(dead_code)]

pub mod asm;
pub mod elfgen;
pub mod sorttable;
pub mod synth;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `extable-tool` binary.
pub fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_extable-tool"))
}

/// Run the tool with `args`.
pub fn run(args: &[&str]) -> Output {
    tool().args(args).output().expect("run extable-tool")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A content hash of a file (None when missing), with its length.
pub fn digest(path: &Path) -> Option<(u64, usize)> {
    let data = std::fs::read(path).ok()?;
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    Some((h.finish(), data.len()))
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Write `bytes` to `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Whether a command exists on PATH.
pub fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
