//! The fused step against the reference, [`Mlp::backprop`] then [`Sgd::step`].

use super::*;
use crate::fast::mul_add::{FusedSoft, Separate};
use crate::fast::sparse::sparsify;
use crate::pixels::normalize;
use crate::{MnistMlp, Params, Rng, Sgd};

extern crate std;
use std::boxed::Box;
use std::format;
use std::vec;
use std::vec::Vec;

/// Buffers for one step of up to `batch` samples, the pixels split at `split`.
struct Buffers {
    split: usize,
    stride: usize,
    count: [Vec<u32>; 2],
    sample: [Vec<u16>; 2],
    val: [Vec<f32>; 2],
    pre: Vec<[f32; 128]>,
    partial: Vec<[f32; 128]>,
    hidden: Vec<[f32; 128]>,
    dpre: Vec<[f32; 128]>,
    dz: Vec<[f32; 10]>,
    loss: Vec<f32>,
    correct: Vec<bool>,
    output: Box<OutputScratch<128, 10>>,
}

impl Buffers {
    fn new(split: usize, batch: usize) -> Self {
        let pixels = [split, 784 - split];
        Self {
            split,
            stride: batch,
            count: pixels.map(|p| vec![0; p]),
            sample: pixels.map(|p| vec![0; p * batch]),
            val: pixels.map(|p| vec![0.0; p * batch]),
            pre: vec![[0.0; 128]; batch],
            partial: vec![[0.0; 128]; batch],
            hidden: vec![[0.0; 128]; batch],
            dpre: vec![[0.0; 128]; batch],
            dz: vec![[0.0; 10]; batch],
            loss: vec![0.0; batch],
            correct: vec![false; batch],
            output: bytemuck::zeroed_box(),
        }
    }

    fn get(&mut self) -> StepBuffers<'_, 128, 10> {
        let [c0, c1] = &mut self.count;
        let [s0, s1] = &mut self.sample;
        let [v0, v1] = &mut self.val;
        StepBuffers {
            columns: [
                Columns::new(0..self.split, self.stride, c0, s0, v0),
                Columns::new(self.split..784, self.stride, c1, s1, v1),
            ],
            rows: SampleRows {
                pre: &mut self.pre,
                hidden: &mut self.hidden,
                dpre: &mut self.dpre,
                dz: &mut self.dz,
                loss: &mut self.loss,
                correct: &mut self.correct,
            },
            partial: &mut self.partial,
            output: &mut self.output,
        }
    }
}

/// `b`, then `a`: the opposite order to [`Sequential`].
struct Reversed;

impl Join for Reversed {
    fn join<A, B>(&mut self, a: A, b: B)
    where
        A: FnOnce() + Send,
        B: FnOnce() + Send,
    {
        b();
        a();
    }
}

/// A model and its velocity, trained by one of the paths.
#[derive(Clone)]
struct StepResult {
    model: Box<MnistMlp>,
    velocity: Box<MnistMlp>,
}

impl StepResult {
    fn new(seed: u64) -> Self {
        let mut model: Box<MnistMlp> = bytemuck::zeroed_box();
        model.init(&mut Rng::new(seed));
        Self {
            model,
            velocity: bytemuck::zeroed_box(),
        }
    }

    fn net(&mut self) -> WithVelocity<'_, MnistMlp> {
        WithVelocity {
            params: &mut self.model,
            velocity: &mut self.velocity,
        }
    }

    /// The reference: `backprop` on the dense inputs, then `Sgd::step`. Returns the mean loss.
    fn reference_step(&mut self, sgd: &Sgd, lr: f64, images: &[[u8; 784]], labels: &[u8]) -> f32 {
        let xs: Vec<[f32; 784]> = images
            .iter()
            .map(|p| {
                let mut x = [0.0f32; 784];
                normalize(p, &mut x);
                x
            })
            .collect();
        let mut grad: Box<MnistMlp> = bytemuck::zeroed_box();
        let loss = self.model.backprop(&xs, labels, &mut grad);
        sgd.step(&mut *self.model, &*grad, &mut *self.velocity, lr);
        loss
    }

    /// The fused step, multiply-adds by `M`, parts run by `join`.
    fn fast_step<M: MulAdd>(
        &mut self,
        step: &SgdStep<f32>,
        batch: Batch<'_>,
        buffers: &mut Buffers,
        join: &mut impl Join,
    ) -> StepStats {
        train_step::<M, _, 784, 128, 10>(self.net(), step, batch, buffers.get(), join)
    }
}

/// Sparse copies of `images`, and the `SparseInput`s viewing them.
struct Sparse {
    idx: Vec<[u16; 784]>,
    val: Vec<[u8; 784]>,
    lens: Vec<usize>,
}

impl Sparse {
    fn new(images: &[[u8; 784]]) -> Self {
        let mut idx = vec![[0u16; 784]; images.len()];
        let mut val = vec![[0u8; 784]; images.len()];
        let lens = images
            .iter()
            .zip(idx.iter_mut().zip(val.iter_mut()))
            .map(|(p, (i, v))| sparsify(p, i, v))
            .collect();
        Self { idx, val, lens }
    }

    fn inputs(&self) -> Vec<SparseInput<'_>> {
        (0..self.lens.len())
            .map(|n| SparseInput {
                idx: &self.idx[n][..self.lens[n]],
                pixel: &self.val[n][..self.lens[n]],
            })
            .collect()
    }
}

/// Runs `f` on `images` and `labels` as the fast step takes them: a [`Batch`] of sparse inputs.
fn with_batch<R>(images: &[[u8; 784]], labels: &[u8], f: impl FnOnce(Batch<'_>) -> R) -> R {
    let sparse = Sparse::new(images);
    let samples = sparse.inputs();
    f(Batch {
        samples: &samples,
        labels,
        soft: None,
    })
}

/// How many parameters of `a` and `b` differ in their bits, and the largest difference.
fn differences(a: &MnistMlp, b: &MnistMlp) -> (usize, f32) {
    let differing = (0..a.num_params())
        .filter(|&i| a.param(i).to_bits() != b.param(i).to_bits())
        .count();
    let worst = (0..a.num_params())
        .map(|i| (a.param(i) - b.param(i)).abs())
        .fold(0.0f32, f32::max);
    (differing, worst)
}

fn assert_same(what: &str, a: &StepResult, b: &StepResult) {
    for (part, x, y) in [
        ("model", &a.model, &b.model),
        ("velocity", &a.velocity, &b.velocity),
    ] {
        let (differing, worst) = differences(x, y);
        assert_eq!(
            differing, 0,
            "{what}, {part}: {differing} parameters differ, worst by {worst:e}"
        );
    }
}

const SGD: Sgd = Sgd {
    momentum: 0.9,
    weight_decay: 1e-4,
};
const LR: f64 = 0.05;

/// Batches of uneven sizes (one sample, an odd count, a full batch), each with its labels.
fn batches(rng: &mut Rng) -> Vec<(Vec<[u8; 784]>, Vec<u8>)> {
    [1usize, 7, 64, 33]
        .iter()
        .map(|&n| {
            let images = testkit::random_images(rng.next_u64(), n);
            let labels = (0..n).map(|_| rng.below(10) as u8).collect();
            (images, labels)
        })
        .collect()
}

/// With the high range empty (every pixel in the low one) and separate multiply-adds, the
/// fused step is `backprop` + `Sgd::step`: every parameter and velocity bit-identical after
/// each of several steps, whichever order the parts run in.
#[test]
fn one_range_is_backprop_then_sgd_bit_for_bit() {
    let mut rng = Rng::new(11);
    let step = SGD.coefficients::<f32>(LR);
    let mut reference = StepResult::new(5);
    let (mut forward, mut backward) = (reference.clone(), reference.clone());
    let mut buffers = Buffers::new(784, 64);
    for (images, labels) in batches(&mut rng) {
        let n = labels.len();
        let ref_loss = reference.reference_step(&SGD, LR, &images, &labels);
        let stats = with_batch(&images, &labels, |batch| {
            let stats = forward.fast_step::<Separate>(&step, batch, &mut buffers, &mut Sequential);
            backward.fast_step::<Separate>(&step, batch, &mut buffers, &mut Reversed);
            stats
        });
        let mean = (stats.loss_sum / n as f64) as f32;
        assert!(
            (mean - ref_loss).abs() <= 1e-5 * ref_loss.abs(),
            "loss {mean} vs {ref_loss}"
        );
        assert_same(&format!("batch of {n}"), &forward, &reference);
        assert_same(
            &format!("batch of {n}, parts reversed"),
            &backward,
            &reference,
        );
    }
}

/// Distillation toward one-hot targets at temperature 1 with all the weight on them is the
/// plain step, bit for bit; toward the teacher's targets it is another step: the soft targets
/// reach the gradient in both halves of the batch.
#[test]
fn soft_targets_reach_the_step() {
    let mut rng = Rng::new(13);
    let step = SGD.coefficients::<f32>(LR);
    let plain = StepResult::new(7);
    let (mut one_hot, mut teacher, mut reference) = (plain.clone(), plain.clone(), plain);
    let mut buffers = Buffers::new(300, 64);
    for (images, labels) in batches(&mut rng) {
        let n = labels.len();
        let hot: Vec<f32> = labels
            .iter()
            .flat_map(|&l| (0..10).map(move |k| f32::from(u8::from(k == l))))
            .collect();
        let uniform = vec![0.1f32; 10 * n];
        let sparse = Sparse::new(&images);
        let samples = sparse.inputs();
        let batch = |soft| Batch {
            samples: &samples,
            labels: &labels,
            soft,
        };
        let soft = |targets, temperature, weight| {
            Some(Soft {
                targets,
                distill: Distill {
                    temperature,
                    weight,
                },
            })
        };
        reference.fast_step::<Separate>(&step, batch(None), &mut buffers, &mut Sequential);
        let batch_hot = batch(soft(&hot, 1.0, 1.0));
        one_hot.fast_step::<Separate>(&step, batch_hot, &mut buffers, &mut Sequential);
        let batch_teacher = batch(soft(&uniform, 4.0, 0.5));
        teacher.fast_step::<Separate>(&step, batch_teacher, &mut buffers, &mut Sequential);
        assert_same(
            &format!("batch of {n}, one-hot targets"),
            &one_hot,
            &reference,
        );
    }
    let (differing, _) = differences(&teacher.model, &reference.model);
    assert!(
        differing > 100_000,
        "only {differing} parameters moved otherwise"
    );
}

/// Largest difference splitting the first layer's sums in two ranges may make to any
/// parameter after four steps (a different rounding of sums of some 150 terms).
const SPLIT_TOLERANCE: f32 = 1e-6;

/// Split in two ranges, the step gives the same bits whichever order its parts run in (so
/// on two threads too), and differs from the reference by rounding only.
#[test]
fn the_parts_are_independent_and_two_ranges_round_only() {
    let mut rng = Rng::new(11);
    let step = SGD.coefficients::<f32>(LR);
    let mut reference = StepResult::new(5);
    let (mut forward, mut backward) = (reference.clone(), reference.clone());
    let mut buffers = Buffers::new(300, 64);
    for (images, labels) in batches(&mut rng) {
        reference.reference_step(&SGD, LR, &images, &labels);
        with_batch(&images, &labels, |batch| {
            forward.fast_step::<Separate>(&step, batch, &mut buffers, &mut Sequential);
            backward.fast_step::<Separate>(&step, batch, &mut buffers, &mut Reversed);
        });
        assert_same(&format!("batch of {}", labels.len()), &backward, &forward);
    }
    let (differing, worst) = differences(&forward.model, &reference.model);
    std::println!("two ranges vs one after 4 steps: {differing} differ, worst by {worst:e}");
    assert!(
        worst <= SPLIT_TOLERANCE,
        "two ranges differ from one by {worst:e} > {SPLIT_TOLERANCE:e}"
    );
}

/// Largest difference a fused multiply-add may make to any parameter after four steps
/// (rounding once instead of twice in sums of some 30 terms; parameters are about 0.1).
const FUSED_TOLERANCE: f32 = 1e-6;

/// Fused multiply-adds against the reference: different, by rounding only.
#[test]
fn fused_differs_by_rounding_only() {
    let mut rng = Rng::new(12);
    let step = SGD.coefficients::<f32>(LR);
    let mut reference = StepResult::new(6);
    let mut fused = reference.clone();
    let mut buffers = Buffers::new(784, 64);
    for _ in 0..4 {
        let images = testkit::random_images(rng.next_u64(), 64);
        let labels: Vec<u8> = (0..64).map(|_| rng.below(10) as u8).collect();
        reference.reference_step(&SGD, LR, &images, &labels);
        with_batch(&images, &labels, |batch| {
            fused.fast_step::<FusedSoft>(&step, batch, &mut buffers, &mut Sequential)
        });
    }
    let (differing, worst) = differences(&fused.model, &reference.model);
    std::println!(
        "fused vs reference after 4 steps: {differing} of {} parameters differ, worst by {worst:e}",
        fused.model.num_params()
    );
    assert!(
        differing > 0,
        "fused multiply-adds changed nothing: not fused?"
    );
    assert!(
        worst <= FUSED_TOLERANCE,
        "a parameter differs by {worst:e} > {FUSED_TOLERANCE:e}"
    );
}

#[test]
#[should_panic(expected = "two consecutive ranges")]
fn columns_that_do_not_cover_the_inputs_are_refused() {
    let mut buffers = Buffers::new(300, 4);
    let mut trained = StepResult::new(1);
    let [c0, c1] = &mut buffers.count;
    let [s0, s1] = &mut buffers.sample;
    let [v0, v1] = &mut buffers.val;
    let samples = [SparseInput {
        idx: &[],
        pixel: &[],
    }];
    train_step::<Separate, _, 784, 128, 10>(
        trained.net(),
        &SGD.coefficients(LR),
        Batch {
            samples: &samples,
            labels: &[0],
            soft: None,
        },
        StepBuffers {
            columns: [
                Columns::new(0..300, 4, c0, s0, v0),
                // A gap: pixel 300 is in neither.
                Columns::new(301..784, 4, &mut c1[1..], s1, v1),
            ],
            rows: SampleRows {
                pre: &mut buffers.pre,
                hidden: &mut buffers.hidden,
                dpre: &mut buffers.dpre,
                dz: &mut buffers.dz,
                loss: &mut buffers.loss,
                correct: &mut buffers.correct,
            },
            partial: &mut buffers.partial,
            output: &mut buffers.output,
        },
        &mut Sequential,
    );
}
