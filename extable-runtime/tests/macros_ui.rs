//! Misuse of the macros is a compile error with a clear message on the culprit
//! (trybuild; the expected messages are in tests/ui/*.stderr).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[test]
fn misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
