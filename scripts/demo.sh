#!/usr/bin/env bash
# The main job: build the demo kernels (x86_64, ARMv7-A, AArch64), sort and check their exception
# tables with extable-tool, boot them in QEMU and show every fault path they walk.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Both binaries: `demo`, and `extable-link`, the linker wrapper the kernels are linked through.
cargo build --release -q -p demo-kernel --bins
cargo run --release -q -p demo-kernel --bin demo -- "$@"
