//! `digits train --arch`: a compact network (downsampled input, three hidden layers) trained
//! with low-bit weights from the first step (quantization-aware, [`digits_core::qat`]) and Adam,
//! on mini-batches split over threads in a fixed way, so a seed gives the same model on any
//! machine and thread count.

pub mod arch;
pub mod store;

use std::time::Instant;

use anyhow::{Result, bail};
use digits_core::compact::Compact;
use digits_core::deep::{Ceilings, Deep, DeepActivations};
use digits_core::downsample::area_average_into;
use digits_core::layer::{LayerKind, Linear};
use digits_core::loss::{cross_entropy_backward, distill_backward};
use digits_core::params::{Params, TensorKind};
use digits_core::qat::{ACTIVATION_MAX, Qat};
use digits_core::softmax::argmax;
use digits_core::{Adam, Muon, Rng, Schedule, muon, pixels};
use rayon::prelude::*;
use serde::Serialize;

use super::augment::Augment;
use super::distill::Distillation;
use super::{Best, EpochReport, Score};
use crate::data::Split;
use arch::{Arch, LayerBits, with_arch};
use store::QuantizedNet;

/// Samples per share of a batch that one thread works on: fixed, so that the gradient is
/// summed in the same order whatever the number of threads.
const SHARE: usize = 32;
/// Weight of the newest batch in the running activation scale.
const SCALE_MOMENTUM: f32 = 0.9;
/// Images used to set the first activation scales.
const CALIBRATION_IMAGES: usize = 1000;

/// Everything that determines a compact training run.
#[derive(Clone, Debug, Serialize)]
pub struct CompactConfig {
    /// The network.
    pub arch: Arch,
    /// Bits per weight code of each layer.
    pub bits: LayerBits,
    /// Passes over the training split.
    pub epochs: u32,
    /// Samples per step.
    pub batch: usize,
    /// Base learning rate of Adam.
    pub lr: f64,
    /// How the weights are updated.
    pub optimizer: Optimizer,
    /// Decoupled weight decay (AdamW), weights only.
    pub weight_decay: f64,
    /// Learning-rate schedule over epochs.
    pub schedule: Schedule,
    /// Seed of initialization and shuffling.
    pub seed: u64,
    /// Training images held out to pick the best epoch; 0 keeps the last.
    pub validation: usize,
    /// Random distortions of the training images, fresh every epoch.
    pub augment: Option<Augment>,
    /// Soft targets from a teacher, if any.
    pub distill: Option<Distillation>,
    /// Only the first this many training images were used.
    pub limit: Option<usize>,
}

/// How a compact network's weights are updated.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Optimizer {
    /// Adam on every tensor.
    Adam,
    /// Muon on the hidden layers' weight matrices, with base learning rate `lr`; Adam on the
    /// biases and the output layer.
    Muon {
        /// Base learning rate of the Muon steps.
        lr: f64,
    },
}

/// The result of a compact run.
pub struct CompactOutcome {
    /// The best network by validation accuracy (the last without a validation split),
    /// quantized.
    pub net: QuantizedNet,
    /// Its epoch, from 1.
    pub best_epoch: u32,
}

/// Trains `cfg.arch` on `train`, keeping the best epoch on `validation`; `on_epoch` sees the
/// history after every epoch.
pub fn train(
    cfg: &CompactConfig,
    train: &Split,
    validation: &Split,
    mut on_epoch: impl FnMut(&[EpochReport]) -> Result<()>,
) -> Result<CompactOutcome> {
    match with_arch!(cfg.arch, train_arch(cfg, train, validation, &mut on_epoch)) {
        Some(outcome) => outcome,
        None => bail!("--arch {} is not compiled in", cfg.arch),
    }
}

/// Loss and accuracy of the integer network on `split`, in parallel.
pub fn evaluate(model: &Compact<'_>, split: &Split) -> Score {
    Score::of(split, |img| {
        let mut logits = [0.0f32; 10];
        model.logits_of_image(img, &mut logits);
        logits
    })
}

/// The images downsampled to the network's input.
fn inputs<const IN: usize>(images: &[[u8; 784]], side: usize) -> Vec<[u8; IN]> {
    images
        .par_iter()
        .map(|img| {
            let mut x = [0u8; IN];
            area_average_into(img, side, &mut x);
            x
        })
        .collect()
}

/// Whether image `index` is distorted in `epoch`: half of them, a different half every epoch
/// (a small network learns the clean digits as well as the distorted ones, as BitNetMCU trains
/// on the images and one distorted copy).
fn distort(seed: u64, epoch: u32, index: usize) -> bool {
    let mix = seed ^ (u64::from(epoch) << 32) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Rng::new(mix).next_u64() & 1 == 1
}

/// Activation scales that put the largest activation of each hidden layer of the float
/// network, over `inputs`, at the largest code.
fn calibrate<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
>(
    master: &Deep<IN, H1, H2, H3, OUT, f32, K1, K2>,
    inputs: &[[u8; IN]],
) -> [f32; 3] {
    let mut max = [0.0f32; 3];
    let mut act = DeepActivations::default();
    for input in inputs {
        let mut x = [0.0f32; IN];
        pixels::normalize(input, &mut x);
        master.forward(&x, &Ceilings::relu(), &mut act);
        for (m, h) in max.iter_mut().zip([&act.h1[..], &act.h2[..], &act.h3[..]]) {
            *m = h.iter().fold(*m, |m, &v| m.max(v));
        }
    }
    max.map(|m| m.max(1e-3) / ACTIVATION_MAX)
}

/// One share of a batch: its gradient sum and statistics.
struct Share<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
> {
    grad: Box<Deep<IN, H1, H2, H3, OUT, f32, K1, K2>>,
    loss: f64,
    correct: usize,
    /// Largest pre-activation of each hidden layer.
    max_pre: [f32; 3],
}

fn largest(values: &[f32], start: f32) -> f32 {
    values.iter().fold(start, |m, &v| m.max(v))
}

fn train_arch<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
>(
    cfg: &CompactConfig,
    train: &Split,
    validation: &Split,
    on_epoch: &mut dyn FnMut(&[EpochReport]) -> Result<()>,
) -> Result<CompactOutcome> {
    let side = cfg.arch.side;
    let mut rng = Rng::new(cfg.seed);
    let mut master: Box<Deep<IN, H1, H2, H3, OUT, f32, K1, K2>> = bytemuck::zeroed_box();
    master.init(&mut rng);
    let mut moment1: Box<Deep<IN, H1, H2, H3, OUT, f32, K1, K2>> = bytemuck::zeroed_box();
    let mut moment2: Box<Deep<IN, H1, H2, H3, OUT, f32, K1, K2>> = bytemuck::zeroed_box();
    let mut grad: Box<Deep<IN, H1, H2, H3, OUT, f32, K1, K2>> = bytemuck::zeroed_box();
    let mut qat: Box<Qat<IN, H1, H2, H3, OUT, K1, K2>> = bytemuck::zeroed_box();
    let adam = Adam {
        weight_decay: cfg.weight_decay,
        ..Adam::default()
    };
    let muon = Muon {
        weight_decay: cfg.weight_decay,
        ..Muon::default()
    };
    // The hidden layers' weight matrices (rows, units), in the order of `Deep`'s tensors
    // (weight, bias, ...).
    let hidden_shapes = [
        (
            <K1::Of<f32> as Linear<IN, H1, f32>>::ROW,
            <K1::Of<f32> as Linear<IN, H1, f32>>::UNITS,
        ),
        (
            <K2::Of<f32> as Linear<H1, H2, f32>>::ROW,
            <K2::Of<f32> as Linear<H1, H2, f32>>::UNITS,
        ),
        (H2, H3),
    ];
    let mut muon_scratch = vec![
        0.0f32;
        hidden_shapes
            .iter()
            .map(|&(i, o)| muon::scratch_len(i, o))
            .max()
            .unwrap_or(0)
    ];
    let bits = cfg.bits.0;
    let mut net = QuantizedNet::zeroed(cfg.arch, cfg.bits);
    // The zeroed tensors have the shapes the trained ones will: refuse a network the integer
    // inference cannot run before any work.
    if let Err(e) = net.view().check_shapes() {
        bail!("--arch {}: {e}", cfg.arch);
    }
    let plain: Vec<[u8; IN]> = inputs(&train.images, side);
    let mut act_scales = calibrate(&*master, &plain[..plain.len().min(CALIBRATION_IMAGES)]);
    let mut order: Vec<u32> = (0..train.labels.len() as u32).collect();
    let mut history: Vec<EpochReport> = Vec::new();
    let mut best: Option<Best<QuantizedNet>> = None;
    let mut step = 0u64;

    let distorter = cfg.augment.map(|a| a.distorter(cfg.seed));
    let teacher = cfg.distill.as_ref().map(|d| d.load()).transpose()?;
    let soft = cfg.distill.as_ref().map(|d| d.loss());
    let mut targets: Vec<[f32; 10]> = Vec::new();
    for epoch in 0..cfg.epochs {
        let start = Instant::now();
        // This epoch's images at full size: the teacher answers for exactly what the student
        // sees, downsampled.
        let seen: Option<Vec<[u8; 784]>> = distorter.as_ref().map(|aug| {
            train
                .images
                .par_iter()
                .enumerate()
                .map(|(i, img)| {
                    if distort(cfg.seed, epoch, i) {
                        aug.apply(img, epoch, i as u32)
                    } else {
                        *img
                    }
                })
                .collect()
        });
        if let Some(teacher) = &teacher {
            teacher.targets(seen.as_deref().unwrap_or(&train.images), &mut targets);
        }
        let distorted;
        let data: &[[u8; IN]] = match &seen {
            Some(seen) => {
                distorted = inputs::<IN>(seen, side);
                &distorted
            }
            None => &plain,
        };
        rng.shuffle(&mut order);
        let lr = cfg.schedule.lr(cfg.lr, epoch);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for batch in order.chunks(cfg.batch) {
            qat.quantize(&master, bits, act_scales, net.buffers())
                .map_err(|e| anyhow::anyhow!("epoch {}: {e}; lower --lr", epoch + 1))?;
            let model = net.view();
            let qat = &*qat;
            let shares: Vec<Share<IN, H1, H2, H3, OUT, K1, K2>> = batch
                .par_chunks(SHARE)
                .map(|indices| {
                    let mut share = Share {
                        grad: bytemuck::zeroed_box(),
                        loss: 0.0,
                        correct: 0,
                        max_pre: [0.0; 3],
                    };
                    let mut act = DeepActivations::default();
                    for &i in indices {
                        let (input, label) = (&data[i as usize], train.labels[i as usize]);
                        qat.forward(&model, input, &mut act);
                        let mut dz = [0.0f32; OUT];
                        let label = label as usize;
                        let q = targets
                            .get(i as usize)
                            .and_then(|q| <&[f32; OUT]>::try_from(&q[..]).ok());
                        share.loss += match (soft, q) {
                            (Some(soft), Some(q)) => {
                                distill_backward(&act.logits, label, q, soft, &mut dz)
                            }
                            _ => cross_entropy_backward(&act.logits, label, &mut dz),
                        } as f64;
                        share.correct += usize::from(argmax(&act.logits) == label);
                        qat.backward(input, &act, &dz, &mut share.grad);
                        let m = &mut share.max_pre;
                        m[0] = largest(&act.pre1, m[0]);
                        m[1] = largest(&act.pre2, m[1]);
                        m[2] = largest(&act.pre3, m[2]);
                    }
                    share
                })
                .collect();
            grad.fill_zero();
            let mut max_pre = [0.0f32; 3];
            for share in &shares {
                for k in 0..grad.tensor_count() {
                    for (g, &s) in grad
                        .tensor_mut(k)
                        .data
                        .iter_mut()
                        .zip(share.grad.tensor(k).data)
                    {
                        *g += s;
                    }
                }
                loss_sum += share.loss;
                correct += share.correct;
                for (m, &s) in max_pre.iter_mut().zip(&share.max_pre) {
                    *m = m.max(s);
                }
            }
            grad.scale(1.0 / batch.len() as f32);
            step += 1;
            match cfg.optimizer {
                Optimizer::Adam => {
                    adam.step(&mut *master, &*grad, &mut *moment1, &mut *moment2, step, lr)
                }
                Optimizer::Muon { lr: base } => {
                    let muon_lr = cfg.schedule.lr(base, epoch);
                    for k in 0..master.tensor_count() {
                        let g = grad.tensor(k);
                        let (w, m1) = (master.tensor_mut(k).data, moment1.tensor_mut(k).data);
                        match (g.kind, hidden_shapes.get(k / 2)) {
                            (TensorKind::Weight, Some(&(inputs, outputs))) => muon
                                .step(w, g.data, m1, inputs, outputs, muon_lr, &mut muon_scratch)
                                .map_err(|e| anyhow::anyhow!("{e}"))?,
                            _ => adam.step_tensor(
                                g.kind,
                                w,
                                g.data,
                                m1,
                                moment2.tensor_mut(k).data,
                                step,
                                lr,
                            ),
                        }
                    }
                }
            }
            for (s, &m) in act_scales.iter_mut().zip(&max_pre) {
                let target = m.max(1e-3) / ACTIVATION_MAX;
                *s = SCALE_MOMENTUM * *s + (1.0 - SCALE_MOMENTUM) * target;
            }
        }
        if !master.all_finite() {
            bail!(
                "training diverged in epoch {} (a weight became NaN or infinite); lower --lr (now {}). No model written",
                epoch + 1,
                cfg.lr
            );
        }
        qat.quantize(&master, bits, act_scales, net.buffers())
            .map_err(|e| anyhow::anyhow!("epoch {}: {e}; lower --lr", epoch + 1))?;
        let seconds = start.elapsed().as_secs_f64();
        let val = (!validation.labels.is_empty()).then(|| evaluate(&net.view(), validation));
        let seen = train.labels.len() as f64;
        history.push(EpochReport {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen,
            train_accuracy: correct as f64 / seen,
            val_loss: val.map(|v| v.loss),
            val_accuracy: val.map(|v| v.accuracy),
            seconds,
            samples_per_second: seen / seconds,
        });
        Best::offer(&mut best, val.map(|v| v.accuracy), epoch + 1, || {
            net.clone()
        });
        on_epoch(&history)?;
    }
    let best = best.expect("at least one epoch ran");
    Ok(CompactOutcome {
        net: best.model,
        best_epoch: best.epoch,
    })
}
