#!/usr/bin/env bash
# The tests: formatting, lints, every host test (runtime with real signals, macros, tool,
# the demo kernels booted in QEMU), and the hosted tests on ARMv7 (A32 and T32) and AArch64
# Linux under qemu-user.
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
  for t in x86_64-unknown-none armv7a-none-eabi; do
    cargo clippy --release --target "$t" -- -D warnings
  done
)

echo "== cargo test (host: x86_64 Linux)"
cargo test --workspace

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
  cargo test -p extable-runtime --target "$t" --lib --test hosted --test tables \
    --test properties --test uaccess --test uaccess_limit --test macros
done
