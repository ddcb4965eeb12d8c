//! A small compact network, quantized from a seeded float one, with owned tensors.

use digits_core::Rng;
use digits_core::compact::{Compact, Layer};
use digits_core::deep::{Ceilings, Deep, DeepActivations};
use digits_core::downsample::area_average;
use digits_core::lowbit::Bits;
use digits_core::pixels;
use digits_core::qat::{LayerBuffers, Qat, layer_shapes};

/// Owned tensors of one quantized layer.
pub struct Owned {
    pub shape: (usize, usize),
    pub bits: Bits,
    pub codes: Vec<u8>,
    pub bias: Vec<u8>,
    pub rescale: Vec<u8>,
}

impl Owned {
    pub fn new(shape: (usize, usize), bits: Bits, last: bool) -> Self {
        Self {
            shape,
            bits,
            codes: vec![0; shape.1 * bits.row_bytes(shape.0)],
            bias: vec![0; 4 * shape.1],
            rescale: vec![0; if last { 4 } else { 3 } * shape.1],
        }
    }

    pub fn layer(&self) -> Layer<'_> {
        Layer {
            inputs: self.shape.0,
            outputs: self.shape.1,
            bits: self.bits,
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

/// A seeded network quantized with `bits`, and its tensors.
pub fn quantized(
    bits: [Bits; 4],
    seed: u64,
) -> (Box<Net>, Box<Qat<256, 32, 24, 16, 10>>, Vec<Owned>) {
    let mut master: Box<Net> = bytemuck::zeroed_box();
    let mut rng = Rng::new(seed);
    master.init(&mut rng);
    for b in master.l1.b.iter_mut().chain(&mut master.out.b) {
        *b = 0.05 * rng.normal() as f32;
    }
    let shapes = layer_shapes::<256, 32, 24, 16, 10>();
    let mut owned: Vec<Owned> = (0..4)
        .map(|k| Owned::new(shapes[k], bits[k], k == 3))
        .collect();
    let mut qat: Box<Qat<256, 32, 24, 16, 10>> = bytemuck::zeroed_box();
    let buffers = owned.iter_mut().map(|o| LayerBuffers {
        codes: &mut o.codes,
        bias: &mut o.bias,
        rescale: &mut o.rescale,
    });
    let buffers: [LayerBuffers<'_>; 4] = buffers.collect::<Vec<_>>().try_into().unwrap();
    qat.quantize(&master, bits, calibrated(&master), buffers)
        .expect("quantizes");
    (master, qat, owned)
}

/// Activation scales that fit the largest activation of each layer over some digits to the
/// largest code.
fn calibrated(master: &Net) -> [f32; 3] {
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
