//! Small compact networks, quantized from seeded float ones, with owned tensors: one of dense
//! layers and one whose first two layers are convolutions.

use digits_core::Rng;
use digits_core::compact::{Compact, Layer};
use digits_core::conv::{ConvKind, Windows};
use digits_core::deep::{Ceilings, Deep, DeepActivations};
use digits_core::downsample::area_average;
use digits_core::layer::{LayerKind, Linear};
use digits_core::lowbit::Bits;
use digits_core::pixels;
use digits_core::qat::{LayerBuffers, Qat, layer_shapes};

/// Owned tensors of one quantized layer.
pub struct Owned {
    pub shape: (usize, usize),
    pub bits: Bits,
    pub windows: Option<Windows>,
    pub codes: Vec<u8>,
    pub bias: Vec<u8>,
    pub rescale: Vec<u8>,
}

impl Owned {
    pub fn new(shape: (usize, usize), bits: Bits, last: bool) -> Self {
        Self::windowed(shape, bits, None, last)
    }

    pub fn windowed(
        shape: (usize, usize),
        bits: Bits,
        windows: Option<Windows>,
        last: bool,
    ) -> Self {
        let size = Layer::shape(shape.0, shape.1, bits, windows).tensor_bytes(last);
        Self {
            shape,
            bits,
            windows,
            codes: vec![0; size.codes],
            bias: vec![0; size.bias],
            rescale: vec![0; size.rescale],
        }
    }

    pub fn layer(&self) -> Layer<'_> {
        Layer {
            inputs: self.shape.0,
            outputs: self.shape.1,
            bits: self.bits,
            windows: self.windows,
            codes: &self.codes,
            bias: &self.bias,
            rescale: &self.rescale,
        }
    }
}

pub fn view(side: usize, layers: &[Owned]) -> Compact<'_> {
    Compact {
        side,
        layers: layers.iter().map(Owned::layer).collect(),
    }
}

pub type Net = Deep<256, 32, 24, 16, 10, f32>;

/// 8x8 windows every 4 pixels of the 16x16 image (9 of them), 12 units each; then 1x1 windows
/// of those, 6 units each; then dense layers of 16 and 10.
pub type Conv1 = ConvKind<16, 1, 8, 4, 64, 12>;
/// The second layer of [`ConvNet`].
pub type Conv2 = ConvKind<3, 12, 1, 1, 12, 6>;
/// A network whose first two layers are convolutions.
pub type ConvNet = Deep<256, 108, 54, 16, 10, f32, Conv1, Conv2>;
/// Its quantized state.
pub type ConvQat = Qat<256, 108, 54, 16, 10, Conv1, Conv2>;

/// A seeded network quantized with `bits`, and its tensors.
pub fn quantized(
    bits: [Bits; 4],
    seed: u64,
) -> (Box<Net>, Box<Qat<256, 32, 24, 16, 10>>, Vec<Owned>) {
    quantized_net(bits, seed)
}

/// [`quantized`] for the network of convolutions.
pub fn quantized_conv(bits: [Bits; 4], seed: u64) -> (Box<ConvNet>, Box<ConvQat>, Vec<Owned>) {
    quantized_net(bits, seed)
}

/// A seeded network of any kind quantized with `bits`, and its tensors.
#[allow(
    clippy::type_complexity,
    reason = "the three parts of one quantized network"
)]
pub fn quantized_net<
    const H1: usize,
    const H2: usize,
    const H3: usize,
    K1: LayerKind<256, H1>,
    K2: LayerKind<H1, H2>,
>(
    bits: [Bits; 4],
    seed: u64,
) -> (
    Box<Deep<256, H1, H2, H3, 10, f32, K1, K2>>,
    Box<Qat<256, H1, H2, H3, 10, K1, K2>>,
    Vec<Owned>,
) {
    let mut master: Box<Deep<256, H1, H2, H3, 10, f32, K1, K2>> = bytemuck::zeroed_box();
    let mut rng = Rng::new(seed);
    master.init(&mut rng);
    for b in master.l1.bias_mut().iter_mut().chain(&mut master.out.b) {
        *b = 0.05 * rng.normal() as f32;
    }
    let shapes = layer_shapes::<256, H1, H2, H3, 10>();
    let windows = [
        <K1::Of<f32> as Linear<256, H1, f32>>::WINDOWS,
        <K2::Of<f32> as Linear<H1, H2, f32>>::WINDOWS,
        None,
        None,
    ];
    let mut owned: Vec<Owned> = (0..4)
        .map(|k| Owned::windowed(shapes[k], bits[k], windows[k], k == 3))
        .collect();
    let mut qat: Box<Qat<256, H1, H2, H3, 10, K1, K2>> = bytemuck::zeroed_box();
    let buffers = owned.iter_mut().map(|o| LayerBuffers {
        codes: &mut o.codes,
        bias: &mut o.bias,
        rescale: &mut o.rescale,
    });
    let buffers: [LayerBuffers<'_>; 4] = buffers.collect::<Vec<_>>().try_into().unwrap();
    qat.quantize(&master, bits, calibrated(&*master), buffers)
        .expect("quantizes");
    (master, qat, owned)
}

/// Activation scales that fit the largest activation of each layer over some digits to the
/// largest code.
fn calibrated<
    const H1: usize,
    const H2: usize,
    const H3: usize,
    K1: LayerKind<256, H1>,
    K2: LayerKind<H1, H2>,
>(
    master: &Deep<256, H1, H2, H3, 10, f32, K1, K2>,
) -> [f32; 3] {
    let mut max = [0.0f32; 3];
    for image in &testkit::test_digits(100).images {
        let mut input = [0u8; 256];
        area_average::<16, 256>(image, &mut input);
        let mut x = [0.0f32; 256];
        pixels::normalize(&input, &mut x);
        let mut act = DeepActivations::default();
        master.forward(&x, &Ceilings::relu(), &mut act);
        for (m, h) in max.iter_mut().zip([&act.h1[..], &act.h2[..], &act.h3[..]]) {
            *m = h.iter().fold(*m, |m, &v| m.max(v));
        }
    }
    max.map(|m| m / 255.0)
}
