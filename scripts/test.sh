#!/usr/bin/env bash
# The tests: formatting, lints, the docs, the MSRV build, packaging of the published crates,
# every host test (runtime with real signals, macros, tool, the demo kernels and the kernel
# templates booted in QEMU), and the hosted tests on ARMv7 (A32 and T32) and AArch64 Linux
# under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo fmt --check, cargo clippy: the bare-metal kernel crate (its own workspace)"
(
  cd demo-kernel/kernel
  cargo fmt -- --check
  for t in x86_64-unknown-none armv7a-none-eabi aarch64-unknown-none; do
    cargo clippy --release --target "$t" -- -D warnings
  done
)

echo "== cargo fmt --check, cargo clippy: the kernel templates (projects of their own)"
for t in x86_64 aarch64; do
  (cd "templates/$t" && cargo fmt -- --check && cargo clippy --release -- -D warnings)
done

echo "== cargo doc (warnings are errors)"
# Every feature but extable-runtime's `loom` (model check only; it leaves the fixup path out),
# as docs.rs builds them.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --exclude extable-runtime
RUSTDOCFLAGS="-D warnings" cargo doc -p extable-runtime --features hosted --no-deps

msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
echo "== the library crates build with the declared MSRV ($msrv)"
# Every user-facing feature: extable-runtime's `loom` is for the model check only (its loom
# dependency needs a newer compiler).
cargo "+$msrv" build -p extable-macros -p extable-tool --all-features --target-dir target/msrv
cargo "+$msrv" build -p extable-runtime --features hosted --target-dir target/msrv

echo "== extable-tool's library without the CLI (what a build script with default-features = false builds)"
cargo build -p extable-tool --no-default-features --lib

echo "== extable-tool built for musl (static; its C library's start-up fills no Rust arguments)"
cargo build --release -p extable-tool --target x86_64-unknown-linux-musl
musl_tool=target/x86_64-unknown-linux-musl/release/extable-tool
out=$("$musl_tool" check /nonexistent/vmlinux 2>&1) && status=0 || status=$?
[ "$status" = 2 ] && grep -q "/nonexistent/vmlinux" <<<"$out" || {
  echo "the musl build did not read its arguments (exit $status): $out"
  exit 1
}

echo "== extable-tool built static against glibc, not position-independent (the fast install)"
# The command README.md gives; --target keeps the flags off the build scripts and proc-macros.
cargo build --release -p extable-tool --target x86_64-unknown-linux-gnu \
  --config 'target.x86_64-unknown-linux-gnu.rustflags=["-C", "target-feature=+crt-static", "-C", "relocation-model=static"]'
static_tool=target/x86_64-unknown-linux-gnu/release/extable-tool
if readelf -lW "$static_tool" | grep -qE "INTERP|DYNAMIC"; then
  echo "the static build has a dynamic loader or dynamic section"
  exit 1
fi
out=$("$static_tool" check /nonexistent/vmlinux 2>&1) && status=0 || status=$?
[ "$status" = 2 ] && grep -q "/nonexistent/vmlinux" <<<"$out" || {
  echo "the static build did not read its arguments (exit $status): $out"
  exit 1
}

echo "== cargo package: the published crates, in dependency order, each verified"
# One invocation: cargo packages extable-macros first and verifies each crate against the
# packaged versions of the others, so no crate needs its dependencies on crates.io.
cargo package --allow-dirty -p extable-macros -p extable-runtime -p extable-tool

echo "== cargo test (host: x86_64 Linux)"
cargo test --workspace

echo "== module-table protocol: loom model check, and the stress test at full size (release)"
cargo test -p extable-runtime --features loom --release --test loom
cargo test -p extable-runtime --release --test stress

echo "== fuzzing extable-tool (fixed budget)"
bash scripts/fuzz.sh

for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf thumbv7neon-unknown-linux-gnueabihf; do
  case $t in
    aarch64*) export EXTABLE_QEMU="qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    *) export EXTABLE_QEMU="qemu-arm -L /usr/arm-linux-gnueabihf" ;;
  esac
  echo "== cargo test -p extable-runtime --target $t (qemu-user)"
  # The hosted tests with real signals; not emitted.rs and the trybuild cases, which drive
  # the host's rustc and are covered by the host run above.
  cargo test -p extable-runtime --target "$t" --lib --test hosted --test hosted_signals \
    --test tables --test properties --test uaccess --test uaccess_limit --test uaccess_unset \
    --test macros --test trap_fields --test stress
done
