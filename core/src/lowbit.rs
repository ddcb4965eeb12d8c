//! Low-bit weight codes: 2 or 4 bits per weight, symmetric levels without zero, packed into
//! bytes.
//!
//! A `b`-bit code `c` in `0..2^b` stands for the odd level `2c - (2^b - 1)`: `-3, -1, 1, 3` for
//! 2 bits, `-15, -13, ..., 15` for 4 bits. A weight is `scale * level`; all `2^b` codes are used
//! (a zero level would waste one of only four for 2 bits), and the kernel multiplies by small odd
//! integers. Codes are packed from the low bits of each byte up, a row of `n` codes taking
//! `ceil(n b / 8)` bytes.

/// Bits per weight code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Bits {
    /// Four levels: `-3, -1, 1, 3`.
    Two,
    /// Sixteen levels: `-15, ..., 15`, odd.
    Four,
}

impl Bits {
    /// From a number of bits, if supported.
    pub const fn from_count(bits: u32) -> Option<Self> {
        match bits {
            2 => Some(Bits::Two),
            4 => Some(Bits::Four),
            _ => None,
        }
    }

    /// The number of bits.
    pub const fn count(self) -> u32 {
        match self {
            Bits::Two => 2,
            Bits::Four => 4,
        }
    }

    /// The largest level, `2^b - 1`.
    pub const fn max_level(self) -> i32 {
        (1 << self.count()) - 1
    }

    /// Bytes of a packed row of `n` codes.
    pub const fn row_bytes(self, n: usize) -> usize {
        (n * self.count() as usize).div_ceil(8)
    }

    /// The level of code `c`.
    #[inline]
    pub const fn level(self, code: u8) -> i32 {
        2 * code as i32 - self.max_level()
    }

    /// The code of the odd level nearest `w / scale`, saturated to the range.
    #[inline]
    pub fn code(self, w: f32, scale: f32) -> u8 {
        // Odd levels 2k + 1 are the centres of [2k, 2k + 2): k = floor(w / 2s).
        let k = libm::floorf(w / (2.0 * scale));
        let half = (1 << (self.count() - 1)) as f32;
        // Code c = k + 2^(b-1), level 2c - (2^b - 1) = 2k + 1.
        (k + half).clamp(0.0, 2.0 * half - 1.0) as u8
    }

    /// The scale of a channel whose weights have root mean square `rms`: levels cover the
    /// weights' spread (about 2.5 standard deviations for 4 bits, the optimum of a 4-level
    /// quantizer of a normal variable for 2 bits).
    pub fn scale_for_rms(self, rms: f32) -> f32 {
        let per_rms = match self {
            Bits::Two => 0.5,
            Bits::Four => 1.0 / 6.0,
        };
        rms.max(1e-6) * per_rms
    }
}

impl core::fmt::Display for Bits {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}-bit", self.count())
    }
}

/// Code `i` of a packed row.
#[inline]
pub fn get(row: &[u8], bits: Bits, i: usize) -> u8 {
    let b = bits.count() as usize;
    let bit = i * b;
    (row[bit / 8] >> (bit % 8)) & ((1u8 << b) - 1)
}

/// Sets code `i` of a packed row.
#[inline]
pub fn set(row: &mut [u8], bits: Bits, i: usize, code: u8) {
    let b = bits.count() as usize;
    let bit = i * b;
    let mask = ((1u8 << b) - 1) << (bit % 8);
    row[bit / 8] = (row[bit / 8] & !mask) | ((code << (bit % 8)) & mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_odd_and_symmetric() {
        for bits in [Bits::Two, Bits::Four] {
            let n = 1u8 << bits.count();
            let levels: [i32; 16] = core::array::from_fn(|c| {
                if c < n as usize {
                    bits.level(c as u8)
                } else {
                    0
                }
            });
            for c in 0..n as usize {
                assert!(levels[c] % 2 != 0);
                assert_eq!(levels[c], -levels[n as usize - 1 - c]);
            }
            assert_eq!(levels[n as usize - 1], bits.max_level());
        }
    }

    #[test]
    fn code_picks_the_nearest_level() {
        for bits in [Bits::Two, Bits::Four] {
            for k in -400..=400 {
                let w = k as f32 * 0.05;
                let level = bits.level(bits.code(w, 1.0)) as f32;
                let best = (0..1u8 << bits.count())
                    .map(|c| (bits.level(c) as f32 - w).abs())
                    .fold(f32::INFINITY, f32::min);
                assert!(
                    (level - w).abs() <= best + 1e-6,
                    "{bits} w {w}: level {level}"
                );
            }
        }
    }

    #[test]
    fn packing_round_trips() {
        for bits in [Bits::Two, Bits::Four] {
            let n = 37;
            let mut row = [0u8; 19];
            let codes: [u8; 37] =
                core::array::from_fn(|i| (i * 7 % 16) as u8 % (1 << bits.count()));
            for (i, &c) in codes.iter().enumerate() {
                set(&mut row, bits, i, c);
            }
            for (i, &c) in codes.iter().enumerate() {
                assert_eq!(get(&row, bits, i), c);
            }
            assert!(row[bits.row_bytes(n)..].iter().all(|&b| b == 0));
        }
    }
}
