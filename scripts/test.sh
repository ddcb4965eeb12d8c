#!/usr/bin/env bash
# The project's one test command: installs what the checks need (idempotent, fresh Debian with
# rustup), then runs every check, stopping at the first failure. CI runs it through .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEVICE=thumbv7em-none-eabihf
started=$SECONDS
step() { printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$*"; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "error: need root (or sudo) for: $*" >&2
        return 1
    fi
}

# A non-login shell (as in CI) may lack rustup's PATH entry.
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi

step "install: rust targets and components"
# wasm32: the browser page's module, which the host's build.rs builds into `digits web`.
rustup target add "$DEVICE" thumbv7m-none-eabi thumbv6m-none-eabi wasm32-unknown-unknown
rustup component add clippy rustfmt llvm-tools

# qemu-system-arm runs the firmware; dataset-fashion-mnist is the second dataset the loader is
# tested on (/usr/share/datasets/fashion-mnist); chromium runs the page of `digits web`
# (host/tests/web_browser.rs drives it headless).
packages=()
command -v qemu-system-arm >/dev/null || packages+=(qemu-system-arm)
command -v chromium >/dev/null || packages+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || packages+=(dataset-fashion-mnist)
if [ ${#packages[@]} -gt 0 ]; then
    step "install: ${packages[*]}"
    # Recommends would pull in a GUI stack and other machines' firmware: not needed here.
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${packages[@]}"
fi
qemu-system-arm --version | head -n 1
chromium --version 2>/dev/null | head -n 1 || true

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets (host)"
cargo clippy --workspace --all-targets -- -D warnings

# Every board: the mps2-an386 and the STM32F405 (feature netduinoplus2, its own target
# directory, as digits builds it) share $DEVICE; the real-board logging (feature rtt) too.
step "cargo clippy -p firmware for every board: $DEVICE (mps2-an386, netduinoplus2), thumbv7m, thumbv6m"
cargo clippy -p firmware --target "$DEVICE" -- -D warnings
cargo clippy -p firmware --target thumbv7m-none-eabi -- -D warnings
cargo clippy -p firmware --target thumbv6m-none-eabi -- -D warnings
cargo clippy -p firmware --target thumbv6m-none-eabi --features rtt -- -D warnings
stm32_dir="${CARGO_TARGET_DIR:-target}/netduinoplus2"
cargo clippy -p firmware --target "$DEVICE" --features netduinoplus2 --target-dir "$stm32_dir" -- -D warnings
cargo clippy -p firmware --target "$DEVICE" --features netduinoplus2,rtt --target-dir "$stm32_dir" -- -D warnings

# The page's module in both builds: every model (and teaching), and compact models only.
step "cargo clippy -p digits-web for wasm32-unknown-unknown (both builds)"
cargo clippy -p digits-web --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p digits-web --target wasm32-unknown-unknown --no-default-features -- -D warnings

# Device targets have no `alloc` crate unless asked for, so these builds prove the core needs no
# heap: on the Cortex-M4F, on a Cortex-M3 without FPU (soft float), and on the micro:bit's
# Cortex-M0 (ARMv6-M: no atomic read-modify-write either).
step "digits-core builds without alloc for $DEVICE, thumbv7m-none-eabi and thumbv6m-none-eabi"
cargo build -p digits-core --target "$DEVICE"
cargo build -p digits-core --target thumbv7m-none-eabi
cargo build -p digits-core --target thumbv6m-none-eabi

# The same build the end-to-end tests make (so they find it done), and the memory it takes:
# text+rodata in 1 MiB of flash, data+bss (plus the stack) in 192 KiB of RAM (memory.x).
# `eval` carries the MNIST model (407,080 bytes) in .rodata, read in place: were it in .data,
# its RAM copy alone would overflow the 192 KiB and the link would fail. `serve` has a profile
# of its own (optimized for size): its code must fit the 64 KiB before its two model slots,
# which its link checks (firmware/src/slots.rs).
step "firmware builds for $DEVICE, within memory.x"
cargo build -p firmware --release --target "$DEVICE" --bin boot --bin eval --bin eval-int8 \
    --bin eval-compact --bin selftest --bin panic --bin hardfault
cargo build -p firmware --profile serve --target "$DEVICE" --bin serve
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
elf_dir="${CARGO_TARGET_DIR:-target}/$DEVICE/release"
"$sysroot/lib/rustlib/$host/bin/llvm-size" "$elf_dir/boot" "$elf_dir/eval" "$elf_dir/eval-int8" "$elf_dir/eval-compact" \
    "${CARGO_TARGET_DIR:-target}/$DEVICE/serve/serve"

# The Cortex-M3 (lm3s6965evb: 256 KiB flash, 64 KiB RAM, memory/lm3s6965evb.x) and the
# micro:bit (nRF51822: 256 KiB flash, 16 KiB RAM, memory/microbit.x) carry the int8 and the
# compact models only (the binaries digits builds for them).
step "firmware eval-int8, eval-compact build for the lm3s6965evb and the microbit, within their memory"
for target in thumbv7m-none-eabi thumbv6m-none-eabi; do
    cargo build -p firmware --release --target "$target" --bin eval-int8 --bin eval-compact
    dir="${CARGO_TARGET_DIR:-target}/$target/release"
    "$sysroot/lib/rustlib/$host/bin/llvm-size" "$dir/eval-int8" "$dir/eval-compact"
done

# The STM32F405 (1 MiB flash, 128 KiB SRAM, memory/netduinoplus2.x): every program but `boot`,
# whose network, gradient and momentum take 150 KB of RAM.
step "firmware builds for the netduinoplus2 (STM32F405), within its memory"
cargo build -p firmware --release --target "$DEVICE" --features netduinoplus2 --target-dir "$stm32_dir" \
    --bin eval --bin eval-int8 --bin eval-compact --bin selftest --bin panic --bin hardfault
cargo build -p firmware --profile serve --target "$DEVICE" --features netduinoplus2 --target-dir "$stm32_dir" \
    --bin serve
dir="$stm32_dir/$DEVICE/release"
"$sysroot/lib/rustlib/$host/bin/llvm-size" "$dir/eval" "$dir/eval-int8" "$dir/eval-compact" "$stm32_dir/$DEVICE/serve/serve"

step "cargo test --workspace (includes the firmware in QEMU on every board)"
cargo test --workspace

step "cargo doc --workspace --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "disk: the build's target directory, and what is left"
du -sh "${CARGO_TARGET_DIR:-target}" || true
df -h . || true

step "all checks passed"
