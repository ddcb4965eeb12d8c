//! The compact architectures `digits train --arch` knows: the input side, three hidden layers
//! and the classes, each compiled as its own `Deep<IN, H1, H2, H3, OUT, f32, K1, K2>` (shapes in
//! the types). The first two hidden layers are dense, or (`w8s4`) convolutions: one layer
//! shared by every 8x8 window of the image, 4 pixels apart, then one shared by the windows'
//! outputs ([`digits_core::conv`]).

use std::fmt;
use std::str::FromStr;

use digits_core::conv::Windows;
use digits_core::lowbit::Bits;

/// A compact network's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Arch {
    /// Side of the downsampled input image.
    pub side: usize,
    /// Windows of the first layer, if it is a convolution (the second then is one of 1x1
    /// windows on its output); `hidden[0]` and `hidden[1]` then count units per window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<Window>,
    /// Units of the three hidden layers.
    pub hidden: [usize; 3],
    /// Classes.
    pub classes: usize,
}

/// Size and step of the first layer's windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    /// Pixels along each side of a window.
    pub kernel: usize,
    /// Pixels from one window to the next.
    pub stride: usize,
}

/// Every architecture compiled in, as `--arch` spells it.
pub const ARCHITECTURES: [&str; 15] = [
    "14x14-16-16-16-10",
    "16x16-16-16-16-10",
    "16x16-32-32-32-10",
    "14x14-48-48-48-10",
    "16x16-56-56-56-10",
    "14x14-64-64-64-10",
    "16x16-64-64-64-10",
    "16x16-96-64-64-10",
    "16x16-96-56-56-10",
    "16x16-w8s4-32-16-64-10",
    "16x16-w8s4-48-24-64-10",
    "16x16-w8s4-64-32-48-10",
    "16x16-w8s4-64-32-64-10",
    "16x16-w7s3-32-16-64-10",
    "16x16-w7s3-36-16-64-10",
];

/// Calls `$f::<IN, H1, H2, H3, OUT, K1, K2>($args)` for the compiled architecture `$arch` (one
/// of [`ARCHITECTURES`]; `None` for any other).
macro_rules! with_arch {
    ($arch:expr, $f:ident($($args:expr),*)) => {{
        use digits_core::conv::ConvKind;
        use digits_core::layer::DenseKind as D;
        let a: $crate::train::compact::arch::Arch = $arch;
        let w = a.windows.map(|w| (w.kernel, w.stride));
        match (a.side, w, a.hidden, a.classes) {
            (14, None, [16, 16, 16], 10) => Some($f::<196, 16, 16, 16, 10, D, D>($($args),*)),
            (16, None, [16, 16, 16], 10) => Some($f::<256, 16, 16, 16, 10, D, D>($($args),*)),
            (16, None, [32, 32, 32], 10) => Some($f::<256, 32, 32, 32, 10, D, D>($($args),*)),
            (14, None, [48, 48, 48], 10) => Some($f::<196, 48, 48, 48, 10, D, D>($($args),*)),
            (16, None, [56, 56, 56], 10) => Some($f::<256, 56, 56, 56, 10, D, D>($($args),*)),
            (14, None, [64, 64, 64], 10) => Some($f::<196, 64, 64, 64, 10, D, D>($($args),*)),
            (16, None, [64, 64, 64], 10) => Some($f::<256, 64, 64, 64, 10, D, D>($($args),*)),
            (16, None, [96, 64, 64], 10) => Some($f::<256, 96, 64, 64, 10, D, D>($($args),*)),
            (16, None, [96, 56, 56], 10) => Some($f::<256, 96, 56, 56, 10, D, D>($($args),*)),
            (16, Some((8, 4)), [32, 16, 64], 10) => Some($f::<
                256, 288, 144, 64, 10,
                ConvKind<16, 1, 8, 4, 64, 32>,
                ConvKind<3, 32, 1, 1, 32, 16>,
            >($($args),*)),
            (16, Some((8, 4)), [48, 24, 64], 10) => Some($f::<
                256, 432, 216, 64, 10,
                ConvKind<16, 1, 8, 4, 64, 48>,
                ConvKind<3, 48, 1, 1, 48, 24>,
            >($($args),*)),
            (16, Some((8, 4)), [64, 32, 48], 10) => Some($f::<
                256, 576, 288, 48, 10,
                ConvKind<16, 1, 8, 4, 64, 64>,
                ConvKind<3, 64, 1, 1, 64, 32>,
            >($($args),*)),
            (16, Some((8, 4)), [64, 32, 64], 10) => Some($f::<
                256, 576, 288, 64, 10,
                ConvKind<16, 1, 8, 4, 64, 64>,
                ConvKind<3, 64, 1, 1, 64, 32>,
            >($($args),*)),
            (16, Some((7, 3)), [32, 16, 64], 10) => Some($f::<
                256, 512, 256, 64, 10,
                ConvKind<16, 1, 7, 3, 49, 32>,
                ConvKind<4, 32, 1, 1, 32, 16>,
            >($($args),*)),
            (16, Some((7, 3)), [36, 16, 64], 10) => Some($f::<
                256, 576, 256, 64, 10,
                ConvKind<16, 1, 7, 3, 49, 36>,
                ConvKind<4, 36, 1, 1, 36, 16>,
            >($($args),*)),
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

    /// Where each layer's windows lie, first to last (`None`: dense).
    pub fn windows(&self) -> [Option<Windows>; 4] {
        let Some(w) = self.windows else {
            return [None; 4];
        };
        let first = Windows {
            side: self.side,
            channels: 1,
            kernel: w.kernel,
            stride: w.stride,
        };
        let second = Windows {
            side: first.out_side(),
            channels: self.hidden[0],
            kernel: 1,
            stride: 1,
        };
        [Some(first), Some(second), None, None]
    }

    /// (inputs, outputs) of each layer, first to last; a convolution's outputs are its windows
    /// times its units.
    pub fn layers(&self) -> [(usize, usize); 4] {
        let [h1, h2, h3] = self.hidden;
        let positions = self.windows()[0].map_or(1, |w| w.positions());
        let (o1, o2) = (positions * h1, positions * h2);
        [(self.inputs(), o1), (o1, o2), (o2, h3), (h3, self.classes)]
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [h1, h2, h3] = self.hidden;
        write!(f, "{s}x{s}-", s = self.side)?;
        if let Some(w) = self.windows {
            write!(f, "w{}s{}-", w.kernel, w.stride)?;
        }
        write!(f, "{h1}-{h2}-{h3}-{c}", c = self.classes)
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
        let number = |s: &str| s.parse::<usize>().map_err(|_| refuse());
        let (input, windows, h1, h2, h3, classes) = match parts[..] {
            [input, h1, h2, h3, classes] => (input, None, h1, h2, h3, classes),
            [input, w, h1, h2, h3, classes] => {
                let (k, s) = w
                    .strip_prefix('w')
                    .and_then(|w| w.split_once('s'))
                    .ok_or_else(refuse)?;
                let window = Window {
                    kernel: number(k)?,
                    stride: number(s)?,
                };
                (input, Some(window), h1, h2, h3, classes)
            }
            _ => return Err(refuse()),
        };
        let (a, b) = input.split_once('x').ok_or_else(refuse)?;
        let arch = Arch {
            side: number(a)?,
            windows,
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

    use digits_core::Linear;
    use digits_core::layer::LayerKind;

    use crate::train::compact::store::QuantizedNet;

    /// The shapes a compiled network has: (inputs, outputs) of each layer and the windows of
    /// the first two.
    #[allow(clippy::type_complexity, reason = "a test's summary of the types")]
    fn compiled<
        const IN: usize,
        const H1: usize,
        const H2: usize,
        const H3: usize,
        const OUT: usize,
        K1: LayerKind<IN, H1>,
        K2: LayerKind<H1, H2>,
    >() -> ([(usize, usize); 4], [Option<Windows>; 2]) {
        (
            [(IN, H1), (H1, H2), (H2, H3), (H3, OUT)],
            [
                <K1::Of<f32> as Linear<IN, H1, f32>>::WINDOWS,
                <K2::Of<f32> as Linear<H1, H2, f32>>::WINDOWS,
            ],
        )
    }

    #[test]
    fn every_listed_architecture_parses_and_is_compiled() {
        for text in ARCHITECTURES {
            let arch: Arch = text.parse().expect(text);
            assert_eq!(arch.to_string(), text);
            let w = arch.windows();
            let zeroed = QuantizedNet::zeroed(arch, LayerBits::all(Bits::Four));
            assert_eq!(zeroed.view().check_shapes(), Ok(()), "{text}");
            assert_eq!(
                with_arch!(arch, compiled()),
                Some((arch.layers(), [w[0], w[1]])),
                "{text}"
            );
        }
        let conv: Arch = "16x16-w8s4-32-16-64-10".parse().unwrap();
        assert_eq!(conv.layers(), [(256, 288), (288, 144), (144, 64), (64, 10)]);
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
        for text in [
            "16x16-w8-32-16-64-10",
            "16x16-w8s-32-16-64-10",
            "16x16-w8s3-32-16-64-10",
        ] {
            assert!(text.parse::<Arch>().is_err(), "{text}");
        }
        let odd = Arch {
            side: 16,
            windows: None,
            hidden: [65, 64, 64],
            classes: 10,
        };
        assert_eq!(with_arch!(odd, compiled()), None);
    }
}
