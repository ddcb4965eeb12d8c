//! NOR flash as the update logic sees it: read in place, erase by sector (every bit to 1),
//! program by 32-bit word (bits only go from 1 to 0).

use core::ops::Range;

use serde::{Deserialize, Serialize};

/// Bytes of one program unit; offsets and lengths given to [`Flash::program`] are multiples.
pub const WORD: u32 = 4;

/// What an erased word reads.
pub const ERASED: u32 = 0xFFFF_FFFF;

/// How an area is cut into sectors (the unit of erase).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Geometry {
    /// Sectors of one size (the nRF51's and the LM3S6965's 1 KiB pages).
    Uniform {
        /// Bytes per sector.
        sector: u32,
    },
    /// Sectors of the sizes listed, in order from the start of the area (the STM32F4's 16, 64
    /// and 128 KiB sectors).
    Listed(&'static [u32]),
}

impl Geometry {
    /// The sector that holds `offset`, if the area reaches that far.
    pub fn sector(&self, offset: u32, area: u32) -> Option<Range<u32>> {
        if offset >= area {
            return None;
        }
        match *self {
            Geometry::Uniform { sector } => {
                let start = offset - offset % sector;
                Some(start..(start + sector).min(area))
            }
            Geometry::Listed(sizes) => {
                let mut start = 0u32;
                for &size in sizes {
                    if offset < start + size {
                        return Some(start..(start + size).min(area));
                    }
                    start += size;
                }
                None
            }
        }
    }
}

/// Why the flash did not do what it was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashError {
    /// Outside the area, or not aligned to a word or a sector.
    Bounds {
        /// The offset asked for.
        offset: u32,
    },
    /// A program or erase did not leave the bytes it should have (read back at `offset`):
    /// the flash is read-only (as in QEMU's STM32F405 and LM3S6965) or worn out.
    Readback {
        /// The first offset that reads wrong.
        offset: u32,
    },
}

impl core::fmt::Display for FlashError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlashError::Bounds { offset } => {
                write!(
                    f,
                    "flash access at {offset:#x} outside the slots or misaligned"
                )
            }
            FlashError::Readback { offset } => write!(
                f,
                "the flash did not take a write at {offset:#x} (read-only, as under QEMU's \
                 STM32F405 and LM3S6965, or worn out)"
            ),
        }
    }
}

/// The flash area that holds the model slots, memory-mapped.
///
/// Offsets are relative to the start of the area. Writes go through `&mut self`, so no slice
/// from [`Flash::bytes`] (which a model running in place borrows) lives across one.
pub trait Flash {
    /// The whole area as it reads now.
    fn bytes(&self) -> &[u8];
    /// How the area is cut into sectors.
    fn geometry(&self) -> Geometry;
    /// Sets every byte of the sector that starts at `start` to `0xFF`.
    fn erase(&mut self, start: u32) -> Result<(), FlashError>;
    /// Programs `bytes` at `offset` (both multiples of [`WORD`]): each bit ends up the AND of
    /// what was there and what is written.
    fn program(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError>;

    /// The sector that holds `offset`.
    fn sector(&self, offset: u32) -> Result<Range<u32>, FlashError> {
        self.geometry()
            .sector(offset, self.bytes().len() as u32)
            .ok_or(FlashError::Bounds { offset })
    }
}

/// NOR rules over a byte slice in RAM: the flash of a board whose "flash" is RAM (QEMU's
/// mps2-an386), and of the build script and the tests, which lay out slots exactly as a
/// device does.
pub struct RamFlash<'a> {
    bytes: &'a mut [u8],
    geometry: Geometry,
}

impl<'a> RamFlash<'a> {
    /// `bytes` as a flash cut as `geometry` says.
    pub fn new(bytes: &'a mut [u8], geometry: Geometry) -> Self {
        Self { bytes, geometry }
    }

    /// The bytes, to write to a file or hand back.
    pub fn into_bytes(self) -> &'a mut [u8] {
        self.bytes
    }
}

impl Flash for RamFlash<'_> {
    fn bytes(&self) -> &[u8] {
        self.bytes
    }

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn erase(&mut self, start: u32) -> Result<(), FlashError> {
        let sector = self.sector(start)?;
        if sector.start != start {
            return Err(FlashError::Bounds { offset: start });
        }
        self.bytes[sector.start as usize..sector.end as usize].fill(0xFF);
        Ok(())
    }

    fn program(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let end = offset as usize + bytes.len();
        if !offset.is_multiple_of(WORD)
            || !bytes.len().is_multiple_of(WORD as usize)
            || end > self.bytes.len()
        {
            return Err(FlashError::Bounds { offset });
        }
        for (cell, &b) in self.bytes[offset as usize..end].iter_mut().zip(bytes) {
            *cell &= b;
        }
        Ok(())
    }
}
