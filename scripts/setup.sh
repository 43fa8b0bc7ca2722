#!/usr/bin/env bash
# Install what the demo and the tests need, idempotently: rustup targets and components, the
# declared MSRV toolchain (minimal profile), QEMU (system and user mode), the ARM cross
# toolchains and the s390x binutils from Debian's packages.
# Sourced by demo.sh and test.sh; safe to run again (it only installs what is missing).
set -euo pipefail

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

need_rust() {
  local targets=(x86_64-unknown-none armv7a-none-eabi aarch64-unknown-none
                 armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu
                 thumbv7neon-unknown-linux-gnueabihf x86_64-unknown-linux-musl)
  local installed
  installed=$(rustup target list --installed)
  for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
  for c in rust-src rustfmt clippy; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
  done
}

# The workspace's `rust-version`: the tests build the library crates with it.
msrv() {
  sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../Cargo.toml"
}

need_msrv() {
  local v
  v=$(msrv)
  rustup toolchain list | grep -q "^$v[.-]" || rustup toolchain install "$v" --profile minimal
}

need_debian() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v qemu-system-arm >/dev/null && command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm)
  command -v qemu-arm >/dev/null && command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
  command -v arm-linux-gnueabihf-gcc >/dev/null || missing+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
  command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  command -v addr2line >/dev/null || missing+=(binutils)
  command -v s390x-linux-gnu-as >/dev/null && command -v s390x-linux-gnu-ld >/dev/null \
    || missing+=(binutils-s390x-linux-gnu)
  command -v jq >/dev/null || missing+=(jq)
  command -v strace >/dev/null || missing+=(strace)
  { python3 -c 'import jsonschema' || /usr/bin/python3 -c 'import jsonschema'; } 2>/dev/null \
    || missing+=(python3-jsonschema)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}" >&2
  sudo_if_needed apt-get update -qq
  # A newer qemu-utils from backports is preinstalled on these machines and refuses an older
  # qemu-system-common: pin qemu-utils to bookworm's (see ../shared/platform.md).
  local pin=()
  if dpkg -s qemu-utils >/dev/null 2>&1; then pin=(qemu-utils/bookworm); fi
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends --allow-downgrades "${missing[@]}" "${pin[@]}" >/dev/null
}

need_rust
need_msrv
need_debian
