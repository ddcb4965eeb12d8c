//! The STM32F405 (Cortex-M4F, 1 MiB of flash, 128 KiB of SRAM: `memory/netduinoplus2.x`), as
//! QEMU's `netduinoplus2` emulates it and as it sits on the Netduino Plus 2, the Olimex
//! STM32-H405 or the Adafruit Feather STM32F405. Registers through ST's PAC (`stm32f4`).
//!
//! - **Clock.** The chip runs from its internal 16 MHz oscillator (HSI), as it comes out of
//!   reset: no PLL, so nothing waits for a ready bit that QEMU, which does not model the RCC,
//!   would never set. QEMU runs the core at its own fixed rate; the firmware measures SysTick
//!   against a known loop rather than trusting a frequency (`device::calibrate`).
//! - **Serial.** USART1 on PA9 (TX) and PA10 (RX), 115,200 baud ([`usart`]); QEMU connects it
//!   to its first `-serial`.
//! - **Flash.** `serve`'s model slots through the flash controller ([`flash`]); QEMU drops
//!   the writes, so a push is refused there.
//! - **Data.** No PSRAM: the `eval` programs, and `serve` for its evaluate request, read the
//!   data blob from a host file over semihosting ([`HostBlob`]).

pub mod flash;
pub mod usart;

pub use super::host_blob::HostBlob;
pub use flash::SlotFlash;
pub use usart::{BAUD, Uart};

/// `serve`'s model slots, through the flash controller.
///
/// # Safety
///
/// Once per program: the flash controller and the slot area are this value's alone.
pub unsafe fn slot_flash() -> SlotFlash {
    // SAFETY: passed on from the caller.
    unsafe { SlotFlash::take() }
}

/// The board's name, as `Info` reports it.
pub const NAME: &str = "netduinoplus2";

/// The data blob in the host file named on the semihosting command line.
pub fn eval_source() -> Result<HostBlob, &'static str> {
    HostBlob::open()
}

/// The data blob `serve` evaluates on, if the host named one (semihosting; never with a debug
/// probe's RTT logging, where no host answers the call).
pub fn serve_data() -> Option<HostBlob> {
    if cfg!(feature = "rtt") {
        return None;
    }
    HostBlob::open().ok()
}
