//! UART0 of the nRF51822 on the micro:bit v1: TX on P0.24 and RX on P0.25, the pins wired to
//! the board's interface chip, which shows them on the computer as a USB serial port. Transmit
//! only, polled: the self-test prints its answers here.

use nrf51_pac as pac;

/// The baud rate set (the interface chip's serial port runs at the same rate).
pub const BAUD: u32 = 115_200;
/// The micro:bit v1's pins of the UART to the interface chip.
const TX_PIN: u32 = 24;
const RX_PIN: u32 = 25;

/// UART0, owned.
pub struct Uart {
    uart: pac::UART0,
}

impl Uart {
    /// Sets UART0 up at [`BAUD`], 8N1, on the interface chip's pins, transmitter started.
    ///
    /// # Safety
    /// Call once: the returned value owns UART0.
    pub unsafe fn take() -> Self {
        // SAFETY: the caller's promise: nothing else uses UART0 (the other peripherals stolen
        // with it are left alone).
        let uart = unsafe { pac::Peripherals::steal() }.UART0;
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
