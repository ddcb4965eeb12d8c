//! The compact architectures `digits train --arch` knows: the input side, three hidden layers
//! and the classes, each compiled as its own `Deep<IN, H1, H2, H3, OUT>` (shapes in the types).

use std::fmt;
use std::str::FromStr;

use digits_core::lowbit::Bits;

/// A compact network's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Arch {
    /// Side of the downsampled input image.
    pub side: usize,
    /// Units of the three hidden layers.
    pub hidden: [usize; 3],
    /// Classes.
    pub classes: usize,
}

/// Every architecture compiled in, as `--arch` spells it.
pub const ARCHITECTURES: [&str; 9] = [
    "14x14-16-16-16-10",
    "16x16-16-16-16-10",
    "16x16-32-32-32-10",
    "14x14-48-48-48-10",
    "16x16-56-56-56-10",
    "14x14-64-64-64-10",
    "16x16-64-64-64-10",
    "16x16-96-64-64-10",
    "16x16-96-56-56-10",
];

/// Calls `$f::<IN, H1, H2, H3, OUT>($args)` for the compiled architecture `$arch` (one of
/// [`ARCHITECTURES`]; `None` for any other).
macro_rules! with_arch {
    ($arch:expr, $f:ident($($args:expr),*)) => {{
        let a: $crate::train::compact::arch::Arch = $arch;
        match (a.side, a.hidden, a.classes) {
            (14, [16, 16, 16], 10) => Some($f::<196, 16, 16, 16, 10>($($args),*)),
            (16, [16, 16, 16], 10) => Some($f::<256, 16, 16, 16, 10>($($args),*)),
            (16, [32, 32, 32], 10) => Some($f::<256, 32, 32, 32, 10>($($args),*)),
            (14, [48, 48, 48], 10) => Some($f::<196, 48, 48, 48, 10>($($args),*)),
            (16, [56, 56, 56], 10) => Some($f::<256, 56, 56, 56, 10>($($args),*)),
            (14, [64, 64, 64], 10) => Some($f::<196, 64, 64, 64, 10>($($args),*)),
            (16, [64, 64, 64], 10) => Some($f::<256, 64, 64, 64, 10>($($args),*)),
            (16, [96, 64, 64], 10) => Some($f::<256, 96, 64, 64, 10>($($args),*)),
            (16, [96, 56, 56], 10) => Some($f::<256, 96, 56, 56, 10>($($args),*)),
            _ => None,
        }
    }};
}
pub(crate) use with_arch;

impl Arch {
    /// Inputs of the first layer.
    pub fn inputs(&self) -> usize {
        self.side * self.side
    }

    /// (inputs, outputs) of each layer, first to last.
    pub fn layers(&self) -> [(usize, usize); 4] {
        let [h1, h2, h3] = self.hidden;
        [(self.inputs(), h1), (h1, h2), (h2, h3), (h3, self.classes)]
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [h1, h2, h3] = self.hidden;
        write!(
            f,
            "{s}x{s}-{h1}-{h2}-{h3}-{c}",
            s = self.side,
            c = self.classes
        )
    }
}

impl FromStr for Arch {
    type Err = String;

    /// `SIDExSIDE-H1-H2-H3-CLASSES`, one of [`ARCHITECTURES`].
    fn from_str(text: &str) -> Result<Self, String> {
        let refuse = || {
            format!(
                "{text:?} is not a compact architecture; choose one of {}",
                ARCHITECTURES.join(", ")
            )
        };
        let parts: Vec<&str> = text.split('-').collect();
        let [input, h1, h2, h3, classes] = parts[..] else {
            return Err(refuse());
        };
        let number = |s: &str| s.parse::<usize>().map_err(|_| refuse());
        let (a, b) = input.split_once('x').ok_or_else(refuse)?;
        let arch = Arch {
            side: number(a)?,
            hidden: [number(h1)?, number(h2)?, number(h3)?],
            classes: number(classes)?,
        };
        if number(b)? != arch.side || !ARCHITECTURES.contains(&arch.to_string().as_str()) {
            return Err(refuse());
        }
        Ok(arch)
    }
}

/// Bits per weight code of each layer, first to last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerBits(pub [Bits; 4]);

impl LayerBits {
    /// The same bits in every layer.
    pub fn all(bits: Bits) -> Self {
        Self([bits; 4])
    }
}

impl fmt::Display for LayerBits {
    /// `4-bit` when all layers agree, else `2/4/4/4-bit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = self.0.iter().map(|b| b.count().to_string()).collect();
        if self.0.windows(2).all(|w| w[0] == w[1]) {
            write!(f, "{}-bit", counts[0])
        } else {
            write!(f, "{}-bit", counts.join("/"))
        }
    }
}

impl FromStr for LayerBits {
    type Err = String;

    /// `B` for every layer or `B1,B2,B3,B4`, each 2 or 4.
    fn from_str(text: &str) -> Result<Self, String> {
        let refuse =
            || format!("{text:?} bits per weight: use 2 or 4, or one per layer as 2,4,4,4");
        let counts = text
            .split(',')
            .map(|b| b.trim().parse::<u32>().ok().and_then(Bits::from_count))
            .collect::<Option<Vec<Bits>>>()
            .ok_or_else(refuse)?;
        match counts[..] {
            [b] => Ok(Self::all(b)),
            [a, b, c, d] => Ok(Self([a, b, c, d])),
            _ => Err(refuse()),
        }
    }
}

impl serde::Serialize for LayerBits {
    /// A number when every layer agrees (as files before per-layer bits), else a list.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let counts = self.0.map(Bits::count);
        if counts.windows(2).all(|w| w[0] == w[1]) {
            s.serialize_u32(counts[0])
        } else {
            counts.serialize(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<
        const IN: usize,
        const H1: usize,
        const H2: usize,
        const H3: usize,
        const OUT: usize,
    >() -> [usize; 5] {
        [IN, H1, H2, H3, OUT]
    }

    #[test]
    fn every_listed_architecture_parses_and_is_compiled() {
        for text in ARCHITECTURES {
            let arch: Arch = text.parse().expect(text);
            assert_eq!(arch.to_string(), text);
            let [h1, h2, h3] = arch.hidden;
            assert_eq!(
                with_arch!(arch, inputs()),
                Some([arch.inputs(), h1, h2, h3, arch.classes]),
                "{text}"
            );
        }
    }

    #[test]
    fn bits_are_one_for_all_layers_or_one_per_layer() {
        let mixed: LayerBits = "2,4,4,4".parse().unwrap();
        assert_eq!(mixed.0, [Bits::Two, Bits::Four, Bits::Four, Bits::Four]);
        assert_eq!(mixed.to_string(), "2/4/4/4-bit");
        assert_eq!(serde_json::to_string(&mixed).unwrap(), "[2,4,4,4]");
        let four: LayerBits = "4".parse().unwrap();
        assert_eq!(
            (four.to_string(), serde_json::to_string(&four).unwrap()),
            ("4-bit".into(), "4".into())
        );
        for bad in ["3", "2,4", "2,4,4,4,4", "", "4,x,4,4"] {
            assert!(
                bad.parse::<LayerBits>()
                    .unwrap_err()
                    .contains("one per layer"),
                "{bad}"
            );
        }
    }

    #[test]
    fn others_are_refused_with_the_list() {
        for text in [
            "16x16-64-10",
            "16x15-64-64-64-10",
            "16x16-65-64-64-10",
            "",
            "a-b-c-d-e",
        ] {
            let e = text.parse::<Arch>().unwrap_err();
            assert!(e.contains("16x16-64-64-64-10"), "{e}");
        }
        let odd = Arch {
            side: 16,
            hidden: [65, 64, 64],
            classes: 10,
        };
        assert_eq!(with_arch!(odd, inputs()), None);
    }
}
