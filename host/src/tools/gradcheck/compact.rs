//! `digits gradcheck --arch`: the compact networks' gradient, the one quantization-aware
//! training applies (`Deep::backward` at clipping ceilings), checked like 784-128-10's.
//!
//! A model file is checked at its dequantized weights ([`digits_core::qat::dequantize`]: the
//! network its integers compute, every ceiling 1). A fresh network has no activation scales
//! yet; its ceilings are half of each hidden layer's largest activation on the batch, so that
//! some units of every layer are clipped and the ceilings' kinks are in the check. A fresh
//! network with convolutions also gets small random biases (see `off_the_kink`).
//! Convolutions are checked as the dense layers they stand for, each shared parameter as all of
//! its copies (`bound.rs`).

use anyhow::{Result, anyhow, bail};
use digits_core::deep::{Ceilings, Deep, DeepActivations};
use digits_core::layer::LayerKind;
use digits_core::params::{Params, TensorKind};
use digits_core::{Rng, qat};

use super::check::PlantedFault;
use super::subject::{DeepSubject, Subject};
use super::{Report, check_all};
use crate::train::compact::arch::{Arch, with_arch};
use crate::train::compact::store::QuantizedNet;

/// All checks on the compact network `arch`: `model`'s, or a fresh one from `seed`.
pub fn check(
    arch: Arch,
    model: Option<&QuantizedNet>,
    pixels: &[[u8; 784]],
    labels: &[u8],
    sample: usize,
    seed: u64,
    fault: Option<PlantedFault>,
) -> Result<Report> {
    let batch = Batch {
        pixels,
        labels,
        sample,
        seed,
        fault,
    };
    with_arch!(arch, check_arch(arch, model, &batch))
        .ok_or_else(|| anyhow!("--arch {arch} is not compiled in"))?
}

/// What the checks take besides the network.
struct Batch<'a> {
    pixels: &'a [[u8; 784]],
    labels: &'a [u8],
    sample: usize,
    seed: u64,
    fault: Option<PlantedFault>,
}

fn check_arch<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
>(
    arch: Arch,
    model: Option<&QuantizedNet>,
    b: &Batch<'_>,
) -> Result<Report> {
    let mut net: Box<Deep<IN, H1, H2, H3, OUT, f32, K1, K2>> = bytemuck::zeroed_box();
    let ceilings = match model {
        Some(q) => match qat::dequantize(&q.view(), &mut *net) {
            Some(c) => c,
            None => bail!("the model's layers are not {arch}"),
        },
        None => {
            let mut rng = Rng::new(b.seed);
            net.init(&mut rng);
            if arch.windows.is_some() {
                off_the_kink(&mut *net, &mut rng);
            }
            Ceilings::relu()
        }
    };
    let mut subject = DeepSubject {
        net,
        ceilings,
        side: arch.side,
    };
    if model.is_none() {
        subject.ceilings = half_the_largest(&subject, b.pixels);
    }
    let mut report = check_all(&subject, b.pixels, b.labels, b.sample, b.seed, b.fault);
    report.network = arch.to_string();
    report.ceilings = subject.ceilings();
    Ok(report)
}

/// Gives every bias a small random value, as training would. A fresh network's biases are 0,
/// and a convolution's window of blank pixels (0 after normalization) then puts every unit
/// exactly on the ReLU's kink, where no central difference can check its shared bias.
fn off_the_kink(net: &mut impl Params<f32>, rng: &mut Rng) {
    for k in 0..net.tensor_count() {
        let t = net.tensor_mut(k);
        if t.kind == TensorKind::Bias {
            for b in t.data {
                *b = rng.uniform_in(-0.05, 0.05) as f32;
            }
        }
    }
}

/// Ceilings at half each hidden layer's largest activation on the batch, the earlier layers
/// already clipped.
fn half_the_largest<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
>(
    subject: &DeepSubject<IN, H1, H2, H3, OUT, K1, K2>,
    pixels: &[[u8; 784]],
) -> Ceilings<f32> {
    let xs: Vec<[f32; IN]> = pixels.iter().map(|p| subject.input::<f32>(p)).collect();
    let mut ceilings = Ceilings::relu();
    let mut act = DeepActivations::default();
    for l in 0..ceilings.0.len() {
        let mut largest = 0.0f32;
        for x in &xs {
            subject.net.forward(x, &ceilings, &mut act);
            let h: &[f32] = match l {
                0 => &act.h1,
                1 => &act.h2,
                _ => &act.h3,
            };
            largest = h.iter().fold(largest, |m, &v| m.max(v));
        }
        if largest > 0.0 {
            ceilings.0[l] = largest / 2.0;
        }
    }
    ceilings
}
