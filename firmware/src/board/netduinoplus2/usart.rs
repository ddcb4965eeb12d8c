//! USART1 of the STM32F405, polled, with the core asleep (`wfi`) while no byte is waiting: the
//! receive interrupt is enabled in the USART and the NVIC but masked by PRIMASK, so it only
//! ends the sleep and no handler runs.
//!
//! The receiver holds one byte (RXNE); QEMU does not deliver the next before it is read, and on
//! the chip at 115,200 baud the loop reads each byte long before the next has arrived.

use cortex_m::peripheral::NVIC;
use stm32f4::stm32f405::{self as pac, Interrupt};

/// The baud rate set.
pub const BAUD: u32 = 115_200;
/// The clock of the APB2 bus, where USART1 is: the HSI after reset, undivided.
const APB2_HZ: u32 = 16_000_000;

/// USART1, owned.
pub struct Uart {
    usart: pac::USART1,
}

impl Uart {
    /// Clocks GPIOA and USART1, puts PA9/PA10 on USART1 (alternate function 7), sets
    /// [`BAUD`], 8N1, transmitter and receiver on, and lets the receive interrupt wake the core
    /// from `wfi`.
    ///
    /// # Safety
    /// Call once, before anything else takes the device's peripherals: the returned value owns
    /// USART1 and its interrupt.
    pub unsafe fn take() -> Self {
        cortex_m::interrupt::disable();
        // SAFETY: the caller's promise: nothing else owns these peripherals.
        let p = unsafe { pac::Peripherals::steal() };
        p.RCC.ahb1enr().modify(|_, w| w.gpioaen().enabled());
        p.RCC.apb2enr().modify(|_, w| w.usart1en().enabled());
        p.GPIOA.afrh().modify(|_, w| w.afrh9().af7().afrh10().af7());
        p.GPIOA
            .moder()
            .modify(|_, w| w.moder9().alternate().moder10().alternate());
        // Oversampling by 16: the divider is the clock over the baud rate, rounded (0.08% off
        // at 16 MHz).
        let divider = (APB2_HZ + BAUD / 2) / BAUD;
        p.USART1.brr().write(|w| {
            w.div_mantissa()
                .set((divider >> 4) as u16)
                .div_fraction()
                .set((divider & 0xF) as u8)
        });
        p.USART1.cr1().write(|w| {
            w.ue()
                .enabled()
                .te()
                .enabled()
                .re()
                .enabled()
                .rxneie()
                .enabled()
        });
        // SAFETY: with PRIMASK set the interrupt is never taken, it only wakes `wfi`.
        unsafe { NVIC::unmask(Interrupt::USART1) };
        Self { usart: p.USART1 }
    }

    /// A received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        let status = self.usart.sr().read();
        // An overrun (a byte lost) or framing error is cleared by the read of DR; the protocol's
        // frame check then drops the damaged frame.
        (status.rxne().bit_is_set() || status.ore().bit_is_set())
            .then(|| self.usart.dr().read().dr().bits() as u8)
    }

    /// Waits for the next byte, asleep in between.
    pub fn read(&mut self) -> u8 {
        loop {
            // The interrupt line follows RXNE; clear the NVIC's pending bit before looking, so
            // that a byte arriving after the look leaves it pending and `wfi` returns at once.
            NVIC::unpend(Interrupt::USART1);
            if let Some(b) = self.try_read() {
                return b;
            }
            cortex_m::asm::wfi();
        }
    }

    /// Sends `bytes`, waiting while the transmit register is full.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while self.usart.sr().read().txe().bit_is_clear() {}
            self.usart.dr().write(|w| w.dr().set(b as u16));
        }
    }
}
