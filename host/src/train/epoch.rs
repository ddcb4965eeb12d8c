//! The epoch loop, one for `digits train` and `digits bench --mode speed`: a fresh shuffle,
//! then the batches in turn, each an SGD step of the network in whichever form it trains.

use std::time::Instant;

use anyhow::Result;
use digits_core::fast::minibatch::Soft;
use digits_core::loss::Distill;
use digits_core::pixels::normalize;
use digits_core::{Rng, Sgd};
use indicatif::ProgressBar;

use crate::train::TrainConfig;
use crate::train::aligned::ModelBox;
use crate::train::net::{DenseBatch, Net};
use crate::train::sparse_set::SparseSet;

/// The training images of one epoch (distorted or not) and their labels.
#[derive(Clone, Copy)]
pub struct EpochData<'a> {
    /// As pixels.
    pub images: &'a [[u8; 784]],
    /// The same images as lit pixels: what the fused step reads ([`Trainer::needs_sparse`]).
    pub sparse: Option<&'a SparseSet>,
    /// One per image.
    pub labels: &'a [u8],
    /// A teacher's probabilities, one per image, if the run distills.
    pub soft: Option<&'a [[f32; 10]]>,
}

/// A mean training loss above this stops the run: a network that learns stays below a uniform
/// guess's loss (ln 10) from its first batches on, and three times that is no noisy start but a
/// run moving away from any answer.
pub const EXPLODED_LOSS: f64 = 3.0 * std::f64::consts::LN_10;

/// Training diverged: a loss or a parameter that is no longer a finite number, or a mean loss
/// above [`EXPLODED_LOSS`].
#[derive(Debug, thiserror::Error)]
#[error("training diverged in epoch {epoch}: {what}")]
pub struct Diverged {
    /// The epoch, from 1.
    pub epoch: u32,
    /// What was seen.
    pub what: String,
}

/// What an epoch saw, summed over its batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpochTotals {
    /// Summed loss of the samples (each by the model as it was when it saw the sample).
    pub loss_sum: f64,
    /// Samples classified correctly, same convention.
    pub correct: usize,
    /// Samples seen.
    pub seen: usize,
    /// Wall time of the epoch's steps (and of putting the images in the epoch's order).
    pub seconds: f64,
}

/// A network in training and the buffers its epochs reuse.
pub struct Trainer {
    pub(super) net: Net,
    sgd: Sgd,
    batch: usize,
    /// This epoch's order of the training images.
    order: Vec<u32>,
    /// The images as lit pixels in this epoch's order, so a batch is read from consecutive
    /// memory (fused step only).
    epoch_set: SparseSet,
    /// `0, 1, 2, ...`: the batches' keys into `epoch_set`.
    positions: Vec<u32>,
    /// A batch as the other steps read it.
    pixels: Vec<[u8; 784]>,
    xs: Vec<[f32; 784]>,
    labels: Vec<u8>,
    /// A batch's soft targets, one sample after the other (distillation only).
    soft: Vec<f32>,
    distill: Option<Distill<f32>>,
}

impl Trainer {
    /// A freshly initialized network for `cfg` (drawing from `rng`, as a seeded run does).
    pub fn new(cfg: &TrainConfig, rng: &mut Rng) -> Self {
        Self {
            net: Net::new(cfg, rng),
            sgd: Sgd {
                momentum: cfg.momentum,
                weight_decay: cfg.weight_decay,
            },
            batch: cfg.batch,
            order: Vec::new(),
            epoch_set: SparseSet::empty(),
            positions: Vec::new(),
            pixels: vec![[0; 784]; cfg.batch],
            xs: vec![[0.0; 784]; cfg.batch],
            labels: vec![0; cfg.batch],
            soft: Vec::with_capacity(10 * cfg.batch),
            distill: cfg.distill.as_ref().map(|d| d.loss()),
        }
    }

    /// Whether [`EpochData::sparse`] must be given.
    pub fn needs_sparse(&self) -> bool {
        matches!(self.net, Net::Fast(_))
    }

    /// The model as it would be deployed now (batch norm folded in).
    pub fn model(&self) -> ModelBox {
        self.net.deployable()
    }

    /// One pass over `data` in a fresh order drawn from `rng`, at learning rate `lr`, with
    /// progress on `bar`; `epoch` (from 0) names the epoch in errors. Fails with [`Diverged`]
    /// if the training diverged (checked at every update of the bar).
    pub fn epoch(
        &mut self,
        data: EpochData<'_>,
        rng: &mut Rng,
        lr: f64,
        epoch: u32,
        bar: Option<&ProgressBar>,
    ) -> Result<EpochTotals> {
        let total = data.labels.len();
        // A fresh permutation every epoch: the order depends only on the generator's state,
        // which a checkpoint keeps.
        self.order.clear();
        self.order.extend(0..total as u32);
        rng.shuffle(&mut self.order);
        let start = Instant::now();
        let coefficients = self.sgd.coefficients::<f32>(lr);
        if self.needs_sparse() {
            let set = data
                .sparse
                .expect("the fused step reads the images as lit pixels");
            self.epoch_set.reorder(set, &self.order);
            if self.positions.len() != total {
                self.positions = (0..total as u32).collect();
            }
        }
        let mut totals = EpochTotals::default();
        for (b, keys) in self.order.chunks(self.batch).enumerate() {
            let n = keys.len();
            for (l, &i) in self.labels.iter_mut().zip(keys) {
                *l = data.labels[i as usize];
            }
            let labels = &self.labels[..n];
            let soft = match (data.soft, self.distill) {
                (Some(targets), Some(distill)) => {
                    self.soft.clear();
                    for &i in keys {
                        self.soft.extend_from_slice(&targets[i as usize]);
                    }
                    Some(Soft {
                        targets: &self.soft,
                        distill,
                    })
                }
                _ => None,
            };
            let (loss, right) = match &mut self.net {
                Net::Fast(net) => {
                    let at = &self.positions[b * self.batch..b * self.batch + n];
                    net.step(&coefficients, &self.epoch_set, at, labels, soft)
                }
                Net::Dense(net) => {
                    for (k, &i) in keys.iter().enumerate() {
                        self.pixels[k] = data.images[i as usize];
                        normalize(&self.pixels[k], &mut self.xs[k]);
                    }
                    let batch = DenseBatch {
                        pixels: &self.pixels[..n],
                        xs: &self.xs[..n],
                        labels,
                    };
                    net.step(batch, &self.sgd, lr)
                }
            };
            // The loss every batch; the parameters (a full pass over them) once an epoch.
            let last = totals.seen + n == total;
            let what = if !loss.is_finite() {
                Some(format!("a batch's loss is {loss}"))
            } else if last && !self.net.all_finite() {
                Some("the parameters are no longer finite numbers".to_string())
            } else {
                None
            };
            totals.loss_sum += loss;
            totals.correct += right;
            totals.seen += n;
            let report = totals.seen % (32 * self.batch) < self.batch || last;
            let mean = totals.loss_sum / totals.seen as f64;
            let what = what.or_else(|| {
                (report && mean > EXPLODED_LOSS).then(|| {
                    format!(
                        "the mean loss reached {mean:.1} after {} images (a uniform guess \
                         scores ln 10 = {:.2})",
                        totals.seen,
                        std::f64::consts::LN_10
                    )
                })
            });
            if let Some(what) = what {
                if let Some(bar) = bar {
                    bar.abandon();
                }
                return Err(Diverged {
                    epoch: epoch + 1,
                    what,
                }
                .into());
            }
            if let Some(bar) = bar
                && report
            {
                bar.set_position(totals.seen as u64);
                bar.set_message(format!(
                    "loss {:.4}  acc {:.2}%",
                    totals.loss_sum / totals.seen as f64,
                    100.0 * totals.correct as f64 / totals.seen as f64
                ));
            }
        }
        totals.seconds = start.elapsed().as_secs_f64();
        Ok(totals)
    }
}
