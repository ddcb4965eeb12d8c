//! Classifies the images of a data blob with the MNIST model in flash (see `firmware::eval` for
//! the blob and the report) and measures the instructions per inference.
//!
//! On the device the blob is loaded by QEMU into the PSRAM:
//!
//! ```text
//! cargo build -p firmware --release --target thumbv7em-none-eabihf --bin eval
//! qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic \
//!   -semihosting-config enable=on,target=native -icount shift=0 \
//!   -device loader,file=BLOB,addr=0x21000000,force-raw=on \
//!   -kernel target/thumbv7em-none-eabihf/release/eval
//! ```
//!
//! A missing or malformed blob exits QEMU with status 1 and the reason on stderr.
//! On the host, `cargo run -p firmware --bin eval -- BLOB` prints the host's report of the same
//! blob (without timings), for comparison.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[cortex_m_rt::entry]
fn main() -> ! {
    firmware::eval::device_main(&firmware::model::MODEL)
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    firmware::eval::host_main(&firmware::model::MODEL)
}
