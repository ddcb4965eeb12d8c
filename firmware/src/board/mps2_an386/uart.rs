//! UART0 of the mps2-an386: an Arm CMSDK APB UART, polled, with the core asleep (`wfi`)
//! while no byte is waiting.
//!
//! Registers (CMSDK APB UART, offsets from [`UART0`]): DATA +0x0, STATE +0x4 (bit 0 TX full,
//! bit 1 RX full), CTRL +0x8 (bit 0 TX enable, bit 1 RX enable, bit 3 RX interrupt enable),
//! INTSTATUS +0xC (write 1 to clear; bit 1 RX), BAUDDIV +0x10. The receiver holds one byte;
//! QEMU does not deliver the next one before it is read, so polling loses nothing.

use core::ptr::{read_volatile, write_volatile};
use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

/// Base address of UART0.
pub const UART0: usize = 0x4000_4000;
/// The core clock of the mps2-an386 FPGA image, Hz.
const CLOCK_HZ: u32 = 25_000_000;
/// The baud rate set (QEMU moves bytes at its own pace whatever the divisor).
pub const BAUD: u32 = 115_200;

const DATA: usize = 0x0;
const STATE: usize = 0x4;
const CTRL: usize = 0x8;
const INTSTATUS: usize = 0xC;
const BAUDDIV: usize = 0x10;

const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;
const TX_ENABLE: u32 = 1 << 0;
const RX_ENABLE: u32 = 1 << 1;
const RX_INTERRUPT: u32 = 1 << 3;

/// UART0's receive interrupt on the mps2-an386 (external interrupt 0).
#[derive(Clone, Copy)]
struct Uart0Rx;

// SAFETY: 0 is UART0 RX's interrupt number on this board.
unsafe impl InterruptNumber for Uart0Rx {
    fn number(self) -> u16 {
        0
    }
}

/// UART0, owned.
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Sets UART0 up at [`BAUD`], transmitter and receiver on, and lets its receive interrupt
    /// wake the core from `wfi`. Interrupts stay masked (PRIMASK): nothing runs a handler, the
    /// pending interrupt only ends the sleep.
    ///
    /// # Safety
    /// Call once: the returned value owns UART0 and its interrupt.
    pub unsafe fn take() -> Self {
        cortex_m::interrupt::disable();
        let uart = Self { _private: () };
        uart.write_reg(BAUDDIV, CLOCK_HZ / BAUD);
        uart.write_reg(CTRL, TX_ENABLE | RX_ENABLE | RX_INTERRUPT);
        // SAFETY: with PRIMASK set the interrupt is never taken, it only wakes `wfi`.
        unsafe { NVIC::unmask(Uart0Rx) };
        uart
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: a register of UART0, which this value owns.
        unsafe { read_volatile((UART0 + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: a register of UART0, which this value owns.
        unsafe { write_volatile((UART0 + offset) as *mut u32, value) }
    }

    /// A received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        (self.read_reg(STATE) & RX_FULL != 0).then(|| self.read_reg(DATA) as u8)
    }

    /// Waits for the next byte, asleep in between.
    pub fn read(&mut self) -> u8 {
        loop {
            // Clear the interrupt before looking, so that a byte arriving after the look
            // leaves it pending and `wfi` returns at once.
            self.write_reg(INTSTATUS, RX_FULL);
            NVIC::unpend(Uart0Rx);
            if let Some(b) = self.try_read() {
                return b;
            }
            cortex_m::asm::wfi();
        }
    }

    /// Sends `bytes`, waiting while the transmitter is full.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while self.read_reg(STATE) & TX_FULL != 0 {}
            self.write_reg(DATA, b as u32);
        }
    }
}
