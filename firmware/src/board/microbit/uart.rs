//! UART0 of the nRF51822 on the micro:bit v1: TX on P0.24 and RX on P0.25, the pins wired to
//! the board's interface chip, which shows them on the computer as a USB serial port. Transmit
//! only, polled: the self-test prints its answers here.

use nrf51_pac as pac;

/// The baud rate set (the interface chip's serial port runs at the same rate).
pub const BAUD: u32 = 115_200;
/// The micro:bit v1's pins of the UART to the interface chip.
const TX_PIN: u32 = 24;
const RX_PIN: u32 = 25;
/// Polls of the crystal's start event before going on without it: about 6 ms at 16 MHz, where
/// the nRF51's crystal takes under 1 ms (QEMU, which has no clock model, never reports it).
const CRYSTAL_POLLS: u32 = 20_000;

/// UART0, owned.
pub struct Uart {
    uart: pac::UART0,
}

impl Uart {
    /// Starts the 16 MHz crystal (the baud rate is only as exact as the clock, and the internal
    /// RC oscillator may be off by a few percent), then sets UART0 up at [`BAUD`], 8N1, on the
    /// interface chip's pins, transmitter started.
    ///
    /// # Safety
    /// Call once: the returned value owns UART0, and the high-frequency clock is started here.
    pub unsafe fn take() -> Self {
        // SAFETY: the caller's promise: nothing else uses UART0 or starts the clock (the other
        // peripherals stolen with them are left alone).
        let p = unsafe { pac::Peripherals::steal() };
        start_crystal(&p.CLOCK);
        let uart = p.UART0;
        // SAFETY (each `bits` below): pin numbers 0-31, and 1 to trigger a task.
        uart.pseltxd.write(|w| unsafe { w.bits(TX_PIN) });
        uart.pselrxd.write(|w| unsafe { w.bits(RX_PIN) });
        uart.baudrate.write(|w| w.baudrate().baud115200());
        uart.enable.write(|w| w.enable().enabled());
        uart.tasks_starttx.write(|w| unsafe { w.bits(1) });
        Self { uart }
    }

    /// Sends `bytes`, each after the last has gone.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // SAFETY: any byte is a valid TXD; 0 clears the event.
            self.uart.events_txdrdy.write(|w| unsafe { w.bits(0) });
            self.uart.txd.write(|w| unsafe { w.bits(b as u32) });
            while self.uart.events_txdrdy.read().bits() == 0 {}
        }
    }
}

/// Starts the crystal oscillator and waits for it, at most [`CRYSTAL_POLLS`] polls: without it
/// the chip keeps running on its RC oscillator.
fn start_crystal(clock: &pac::CLOCK) {
    // SAFETY (each `bits`): 0 clears the event, 1 triggers the task.
    clock.events_hfclkstarted.write(|w| unsafe { w.bits(0) });
    clock.tasks_hfclkstart.write(|w| unsafe { w.bits(1) });
    for _ in 0..CRYSTAL_POLLS {
        if clock.events_hfclkstarted.read().bits() != 0 {
            return;
        }
    }
}
