#!/bin/sh
# The kernel's linker (see .cargo/config.toml): build extable-link from the workspace if
# needed, then link through it: rust-lld, then extable-tool sorts and checks __ex_table in
# the output and clears the sort marker. So a plain `cargo build` here yields a sorted,
# checked kernel. (The harness sets CARGO_TARGET_<TRIPLE>_LINKER to its own extable-link,
# which takes precedence over this file.)
set -e
workspace=$(cd "$(dirname "$0")/../.." && pwd)
env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
    -u CARGO_MAKEFLAGS -u MAKEFLAGS \
    cargo build -q --release --manifest-path "$workspace/Cargo.toml" -p demo-kernel --bin extable-link >&2
exec "$workspace/target/release/extable-link" "$@"
