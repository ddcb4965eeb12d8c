//! Classifies the images of a data blob with the compact model in flash (made by `digits train
//! --arch`: `models/compact.digits`, or the file `DIGITS_MODEL_COMPACT` names), with the core's
//! integer inference, as `eval` does with the f32 model (see `firmware::eval` for the blob and
//! the report), and measures the instructions per inference and the RAM.
//!
//! On the mps2-an386 (Cortex-M4F) the blob is loaded by QEMU into the PSRAM:
//!
//! ```text
//! cargo build -p firmware --release --target thumbv7em-none-eabihf --bin eval-compact
//! qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic \
//!   -semihosting-config enable=on,target=native -icount shift=0 \
//!   -device loader,file=BLOB,addr=0x21000000,force-raw=on \
//!   -kernel target/thumbv7em-none-eabihf/release/eval-compact
//! ```
//!
//! On the lm3s6965evb (Cortex-M3) it reads the blob from a host file over semihosting:
//!
//! ```text
//! cargo build -p firmware --release --target thumbv7m-none-eabi --bin eval-compact
//! qemu-system-arm -M lm3s6965evb -cpu cortex-m3 -nographic -icount shift=0 \
//!   -semihosting-config enable=on,target=native,arg=eval-compact,arg=BLOB \
//!   -kernel target/thumbv7m-none-eabi/release/eval-compact
//! ```
//!
//! A missing or malformed blob exits QEMU with status 1 and the reason on stderr.
//! On the host, `cargo run -p firmware --bin eval-compact -- BLOB` prints the host's report of
//! the same blob (without timings), for comparison.
#![cfg_attr(target_os = "none", no_std, no_main)]

use firmware::model::FlashCompact;

#[cfg(target_os = "none")]
#[cortex_m_rt::entry]
fn main() -> ! {
    firmware::eval::device_main(&FlashCompact::new())
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    firmware::eval::host_main(&FlashCompact::new())
}
