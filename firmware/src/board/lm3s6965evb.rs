//! QEMU's `lm3s6965evb`: a Cortex-M3 (ARMv7-M: no FPU, no DSP instructions), 256 KiB of flash
//! and 64 KiB of RAM (`memory/lm3s6965evb.x`), no PSRAM. Of the 784-128-10 models only the
//! int8 one fits its flash. The `eval` programs read their data blob from a host file
//! ([`HostBlob`]).

pub use super::host_blob::HostBlob;

/// The board's name, as `Info` reports it.
pub const NAME: &str = "lm3s6965evb";

/// The data blob in the host file named on the semihosting command line.
pub fn eval_source() -> Result<HostBlob, &'static str> {
    HostBlob::open()
}
