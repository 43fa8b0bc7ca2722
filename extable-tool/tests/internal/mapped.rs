//! The mapping of the input ([`Mapped`]): a truncation under it is an error, not a signal,
//! and its SIGBUS guard covers only its own mappings.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use extable_tool::mapped::Mapped;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// A real truncation under a real mapping: the read that would raise SIGBUS completes, and
/// the truncation is reported.
#[test]
fn truncation_while_mapped_is_an_error_not_a_signal() {
    let dir = tempdir();
    let path = write(dir.path(), "f", &vec![0x5a; 1 << 20]);
    let mapped = Mapped::open(&path).unwrap();
    assert!(mapped.verify_unchanged().is_ok());
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let tail = mapped.bytes()[(1 << 20) - 1];
    assert_eq!(tail, 0, "the page past the end reads as zeros");
    let err = mapped.verify_unchanged().unwrap_err();
    assert!(err.message.contains("changed size"), "{}", err.message);
}

/// process still ends it with SIGBUS (run in a child: this test binary, re-invoked).
#[test]
fn faults_outside_the_guarded_mappings_still_raise_sigbus() {
    const CHILD: &str = "EXTABLE_TEST_SIGBUS_CHILD";
    if let Some(dir) = std::env::var_os(CHILD) {
        let dir = PathBuf::from(dir);
        let ours = write(&dir, "guarded", &vec![1; 8192]);
        let _guarded = Mapped::open(&ours).unwrap();
        let other = write(&dir, "unguarded", &vec![2; 8192]);
        let f = fs::File::open(&other).unwrap();
        // SAFETY: a read-only shared mapping of a file this child owns; it is truncated
        // below on purpose, so the read faults.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        fs::OpenOptions::new()
            .write(true)
            .open(&other)
            .unwrap()
            .set_len(0)
            .unwrap();
        // SAFETY: p maps 8192 bytes; the read faults with SIGBUS (the point of the test).
        let v = unsafe { std::ptr::read_volatile((p as *const u8).add(4096)) };
        println!("read {v} without a fault");
        std::process::exit(0);
    }
    let dir = tempdir();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "internal_tests::mapped::faults_outside_the_guarded_mappings_still_raise_sigbus",
            "--nocapture",
        ])
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGBUS),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}
