//! A flash in RAM that records every erase and program, so that a test can replay an update
//! and cut the power before, after and in the middle of each of them.

use digits_core::update::flash::{Flash, FlashError, Geometry, RamFlash};

/// One write to the flash.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The sector `start..end` erased.
    Erase { start: u32, end: u32 },
    /// `bytes` programmed at `at`.
    Program { at: u32, bytes: Vec<u8> },
}

/// NOR flash in a `Vec`, with a log of its writes. Programming a byte that is neither erased
/// nor being cleared to 0 fails the test: the update must only write where it erased (or clear
/// a mark word).
pub struct SimFlash {
    pub bytes: Vec<u8>,
    pub geometry: Geometry,
    pub log: Vec<Op>,
}

impl SimFlash {
    pub fn new(bytes: Vec<u8>, geometry: Geometry) -> Self {
        Self {
            bytes,
            geometry,
            log: Vec::new(),
        }
    }
}

impl Flash for SimFlash {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn erase(&mut self, start: u32) -> Result<(), FlashError> {
        let sector = self.sector(start)?;
        assert_eq!(sector.start, start, "erase of a sector's middle");
        self.log.push(Op::Erase {
            start,
            end: sector.end,
        });
        apply(
            &mut self.bytes,
            self.geometry,
            self.log.last().unwrap(),
            Cut::Whole,
        );
        Ok(())
    }

    fn program(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let old = &self.bytes[offset as usize..offset as usize + bytes.len()];
        for (k, (&o, &n)) in old.iter().zip(bytes).enumerate() {
            assert!(
                o == 0xFF || n == 0 || o & n == o,
                "program of {n:#04x} over {o:#04x} at {:#x}: not erased first",
                offset as usize + k
            );
        }
        self.log.push(Op::Program {
            at: offset,
            bytes: bytes.to_vec(),
        });
        apply(
            &mut self.bytes,
            self.geometry,
            self.log.last().unwrap(),
            Cut::Whole,
        );
        Ok(())
    }
}

/// How much of an operation happened before the power went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// All of it.
    Whole,
    /// An erase: its first half of words erased, the rest as they were. A program: its first
    /// half of words programmed, the next one with only some of its bits, the rest untouched.
    FirstHalf,
    /// An erase: its second half erased (erases need not go in address order). A program:
    /// every word but the last, which gets only some of its bits.
    AllButLast,
}

/// Applies `op` to `bytes` as far as `cut` lets it.
pub fn apply(bytes: &mut [u8], geometry: Geometry, op: &Op, cut: Cut) {
    let _ = geometry;
    match op {
        Op::Erase { start, end } => {
            let (s, e) = (*start as usize, *end as usize);
            let mid = s + (e - s) / 2;
            let range = match cut {
                Cut::Whole => s..e,
                Cut::FirstHalf => s..mid,
                Cut::AllButLast => mid..e,
            };
            bytes[range].fill(0xFF);
        }
        Op::Program { at, bytes: new } => {
            let words = new.len() / 4;
            let (whole, partial) = match cut {
                Cut::Whole => (words, None),
                Cut::FirstHalf => (words / 2, Some(words / 2)),
                Cut::AllButLast => (words - 1, Some(words - 1)),
            };
            let at = *at as usize;
            for (cell, &n) in bytes[at..at + whole * 4].iter_mut().zip(new) {
                *cell &= n;
            }
            if let Some(w) = partial.filter(|&w| w < words) {
                // Some bits of the interrupted word made it: those of the mask.
                let mask = [0x0F, 0xF0, 0x3C, 0xC3];
                for (i, m) in mask.iter().enumerate() {
                    bytes[at + w * 4 + i] &= new[w * 4 + i] | m;
                }
            }
        }
    }
}

/// A RAM flash over `bytes`, to boot from.
pub fn ram(bytes: &mut [u8], geometry: Geometry) -> RamFlash<'_> {
    RamFlash::new(bytes, geometry)
}
