//! The STM32F405's flash controller, for `serve`'s model slots: sector erase and 32-bit
//! programming (PSIZE x32, for a supply of 2.7-3.6 V), as the reference manual RM0090 (section
//! 3.6) gives the sequences.
//!
//! QEMU's netduinoplus2 emulates the flash as ROM and its controller not at all: there every
//! write is dropped, the read-back in `digits_core::update` notices, and a push is refused
//! with the running model unchanged. The sequences are for the real chip, untested on one.

use digits_core::update::flash::{Flash, FlashError, Geometry};
use stm32f4::stm32f405 as pac;

use crate::slots::{AREA_LEN, GEOMETRY};

/// Index of the first sector of the slot area (sectors 0-3 hold the firmware).
const FIRST_SECTOR: u8 = 4;

/// The slot area of the STM32F405's flash.
pub struct SlotFlash {
    start: usize,
}

impl SlotFlash {
    /// The area at `_slots_start`.
    ///
    /// # Safety
    ///
    /// Once per program: the flash controller and the area are this value's alone.
    pub unsafe fn take() -> Self {
        unsafe extern "C" {
            static _slots_start: u8;
        }
        Self {
            start: (&raw const _slots_start) as usize,
        }
    }

    fn regs(&self) -> &'static pac::flash::RegisterBlock {
        // SAFETY: the flash controller's registers are always mapped; `take` made this value
        // their only user.
        unsafe { &*pac::FLASH::ptr() }
    }

    /// Unlocks the control register, runs `op`, waits for it and locks again.
    fn with_unlocked(&mut self, op: impl FnOnce(&pac::flash::RegisterBlock)) -> Result<(), ()> {
        let f = self.regs();
        if f.cr().read().lock().bit_is_set() {
            // SAFETY: the two key values of RM0090 3.5.1, in order.
            f.keyr().write(|w| unsafe { w.key().bits(0x4567_0123) });
            f.keyr().write(|w| unsafe { w.key().bits(0xCDEF_89AB) });
        }
        while f.sr().read().bsy().bit_is_set() {}
        op(f);
        while f.sr().read().bsy().bit_is_set() {}
        let sr = f.sr().read();
        let failed = sr.pgserr().bit_is_set()
            || sr.pgperr().bit_is_set()
            || sr.pgaerr().bit_is_set()
            || sr.wrperr().bit_is_set()
            || sr.operr().bit_is_set();
        // Clear the flags (write 1) and lock.
        f.sr().write(|w| {
            w.pgserr().clear();
            w.pgperr().clear();
            w.pgaerr().clear();
            w.wrperr().clear();
            w.operr().clear();
            w.eop().clear()
        });
        f.cr()
            .modify(|_, w| w.pg().clear_bit().ser().clear_bit().lock().locked());
        if failed { Err(()) } else { Ok(()) }
    }
}

impl Flash for SlotFlash {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the area is mapped flash, AREA_LEN bytes from `_slots_start`
        // (memory/netduinoplus2.x), in no Rust object; it changes only in `erase` and
        // `program`, which take `&mut self` and so outlive no slice returned here.
        unsafe { core::slice::from_raw_parts(self.start as *const u8, AREA_LEN as usize) }
    }

    fn geometry(&self) -> Geometry {
        GEOMETRY
    }

    fn erase(&mut self, start: u32) -> Result<(), FlashError> {
        let sector = self.sector(start)?;
        let Geometry::Listed(sizes) = GEOMETRY else {
            unreachable!("the STM32F4's sectors are listed")
        };
        let mut index = FIRST_SECTOR;
        let mut at = 0;
        for &size in sizes {
            if at == sector.start {
                break;
            }
            at += size;
            index += 1;
        }
        self.with_unlocked(|f| {
            // SAFETY: `index` is a sector of this 12-sector part (4..=11).
            f.cr()
                .modify(|_, w| unsafe { w.psize().psize32().ser().set_bit().snb().bits(index) });
            f.cr().modify(|_, w| w.strt().start());
        })
        .map_err(|()| FlashError::Readback { offset: start })
    }

    fn program(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let end = offset as usize + bytes.len();
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) || end > AREA_LEN as usize {
            return Err(FlashError::Bounds { offset });
        }
        let start = self.start;
        self.with_unlocked(|f| {
            f.cr().modify(|_, w| w.psize().psize32().pg().set_bit());
            for (k, word) in bytes.chunks_exact(4).enumerate() {
                let at = start + offset as usize + 4 * k;
                let value = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                // SAFETY: `at` is a word-aligned address inside the slot area (checked above),
                // which PG makes writable one word at a time.
                unsafe { core::ptr::write_volatile(at as *mut u32, value) };
                while f.sr().read().bsy().bit_is_set() {}
            }
        })
        .map_err(|()| FlashError::Readback { offset })
    }
}
