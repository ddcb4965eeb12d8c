//! The core's fused mini-batch step ([`train_step`]) on the host: its memory (on cache lines,
//! reused from step to step) and its two threads, each part compiled for the CPU's widest
//! vectors. The arithmetic is all the core's.

use std::ops::Range;

use digits_core::MnistMlp;
use digits_core::fast::minibatch::{
    Batch, Columns, Join, OutputScratch, SampleRows, Soft, StepBuffers, StepStats, train_step,
};
use digits_core::fast::sparse::SparseInput;
use digits_core::optim::{SgdStep, WithVelocity};

use crate::simd::{Fused, dispatch};
use crate::train::aligned::{AlignedBox, AlignedRows};
use crate::train::sparse_set::SparseSet;
use crate::train::threads::TwoThreads;

/// Where the pixels are split in two ranges, one per thread: the first layer's sums, `W1`'s
/// rows and their update. Row 14.5 of the image's 28, where about half of the lit pixels are
/// above; the second thread also updates the output layer and the biases, which balances its
/// fewer rows. Part of the arithmetic (see [`digits_core::fast::minibatch`]): changing it
/// changes the rounding of the first layer's sums, on any number of threads alike.
pub const ROW_SPLIT: usize = 406;

/// Room for one range of pixels of a batch by pixel ([`Columns`]).
struct ColumnBuffers {
    pixels: Range<usize>,
    stride: usize,
    count: Vec<u32>,
    sample: Vec<u16>,
    val: Vec<f32>,
}

impl ColumnBuffers {
    /// For the pixels `pixels` of batches of up to `batch` samples.
    fn new(pixels: Range<usize>, batch: usize) -> Self {
        Self {
            stride: batch,
            count: vec![0; pixels.len()],
            sample: vec![0; batch * pixels.len()],
            val: vec![0.0; batch * pixels.len()],
            pixels,
        }
    }

    fn columns(&mut self) -> Columns<'_> {
        Columns::new(
            self.pixels.clone(),
            self.stride,
            &mut self.count,
            &mut self.sample,
            &mut self.val,
        )
    }
}

/// The memory of [`train_step`] for batches of up to a given size, and its two threads.
pub struct FastStep {
    /// The columns of the pixels below [`ROW_SPLIT`] and from it on.
    cols: [ColumnBuffers; 2],
    pre: AlignedRows<128>,
    /// The sums of the second range of pixels.
    partial: AlignedRows<128>,
    hidden: AlignedRows<128>,
    dpre: AlignedRows<128>,
    dz: Vec<[f32; 10]>,
    loss: Vec<f32>,
    correct: Vec<bool>,
    out: AlignedBox<OutputScratch<128, 10>>,
    threads: TwoThreads,
}

impl FastStep {
    /// Buffers for batches of up to `batch` samples; two threads if rayon has two or more.
    pub fn new(batch: usize) -> Self {
        Self {
            cols: [
                ColumnBuffers::new(0..ROW_SPLIT, batch),
                ColumnBuffers::new(ROW_SPLIT..784, batch),
            ],
            pre: AlignedRows::zeros(batch),
            partial: AlignedRows::zeros(batch),
            hidden: AlignedRows::zeros(batch),
            dpre: AlignedRows::zeros(batch),
            dz: vec![[0.0; 10]; batch],
            loss: vec![0.0; batch],
            correct: vec![false; batch],
            out: AlignedBox::zeroed(),
            threads: TwoThreads::new(rayon::current_num_threads()),
        }
    }

    /// One SGD step of `net` on the images `batch` of `set` with `labels` and, when the run
    /// distills, the teacher's `soft` targets (fastest when they
    /// are consecutive: [`SparseSet::reorder`]): [`train_step`] with fused multiply-adds,
    /// the pixels split at [`ROW_SPLIT`], its parts on the two threads. A thread reads and
    /// writes only its own rows of `W1` (and of their velocity), so they stay in its core's
    /// cache from step to step; only the per-sample rows cross.
    pub fn step(
        &mut self,
        net: WithVelocity<'_, MnistMlp>,
        step: &SgdStep<f32>,
        set: &SparseSet,
        batch: &[u32],
        labels: &[u8],
        soft: Option<Soft<'_>>,
    ) -> StepStats {
        let samples: Vec<SparseInput<'_>> = batch.iter().map(|&k| set.get(k as usize)).collect();
        let [low, high] = &mut self.cols;
        let buffers = StepBuffers {
            columns: [low.columns(), high.columns()],
            rows: SampleRows {
                pre: &mut self.pre,
                hidden: &mut self.hidden,
                dpre: &mut self.dpre,
                dz: &mut self.dz,
                loss: &mut self.loss,
                correct: &mut self.correct,
            },
            partial: &mut self.partial,
            output: &mut self.out,
        };
        let batch = Batch {
            samples: &samples,
            labels,
            soft,
        };
        train_step::<Fused, _, 784, 128, 10>(
            net,
            step,
            batch,
            buffers,
            &mut Vectorized(&mut self.threads),
        )
    }
}

/// A step's two parts at once on [`TwoThreads`], each compiled for the CPU's widest vectors
/// ([`dispatch`]).
struct Vectorized<'a>(&'a mut TwoThreads);

impl Join for Vectorized<'_> {
    #[inline(always)]
    fn join<A, B>(&mut self, a: A, b: B)
    where
        A: FnOnce() + Send,
        B: FnOnce() + Send,
    {
        self.0.join(
            #[inline(always)]
            || dispatch(a),
            #[inline(always)]
            || dispatch(b),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use digits_core::fast::minibatch::Sequential;
    use digits_core::{Params, Rng, Sgd};

    /// The core's step on this thread, in plain vectors, the same split.
    fn core_step(
        net: WithVelocity<'_, MnistMlp>,
        step: &SgdStep<f32>,
        samples: &[SparseInput<'_>],
        labels: &[u8],
    ) {
        let n = samples.len();
        let mut cols = [
            ColumnBuffers::new(0..ROW_SPLIT, n),
            ColumnBuffers::new(ROW_SPLIT..784, n),
        ];
        let [low, high] = &mut cols;
        let mut rows = vec![[0.0f32; 128]; 4 * n];
        let (pre, rest) = rows.split_at_mut(n);
        let (hidden, rest) = rest.split_at_mut(n);
        let (dpre, partial) = rest.split_at_mut(n);
        let (mut dz, mut loss, mut correct) = (vec![[0.0; 10]; n], vec![0.0; n], vec![false; n]);
        let mut output: Box<OutputScratch<128, 10>> = bytemuck::zeroed_box();
        let buffers = StepBuffers {
            columns: [low.columns(), high.columns()],
            rows: SampleRows {
                pre,
                hidden,
                dpre,
                dz: &mut dz,
                loss: &mut loss,
                correct: &mut correct,
            },
            partial,
            output: &mut output,
        };
        dispatch(|| {
            train_step::<Fused, _, 784, 128, 10>(
                net,
                step,
                Batch {
                    samples,
                    labels,
                    soft: None,
                },
                buffers,
                &mut Sequential,
            )
        });
    }

    /// `FastStep::step` on two threads and on one, against the core's `train_step` run
    /// sequentially with the same split: every parameter and velocity bit-identical after a
    /// few steps of uneven batch sizes.
    #[test]
    fn two_threads_one_thread_and_the_core_alone_give_the_same_bits() {
        let mut rng = Rng::new(3);
        let images = testkit::random_images(rng.next_u64(), 200);
        let labels: Vec<u8> = (0..200).map(|_| rng.below(10) as u8).collect();
        let set = SparseSet::new(&images);
        let step = Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
        }
        .coefficients::<f32>(0.05);
        let start: Box<MnistMlp> = {
            let mut m: Box<MnistMlp> = bytemuck::zeroed_box();
            m.init(&mut Rng::new(4));
            m
        };
        let batches: [Range<usize>; 4] = [0..64, 64..65, 65..138, 138..200];
        let mut results = Vec::new();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            results.push(pool.install(|| {
                let (mut m, mut v) = (start.clone(), bytemuck::zeroed_box::<MnistMlp>());
                let mut fast = FastStep::new(73);
                for r in batches.clone() {
                    let keys: Vec<u32> = (r.start as u32..r.end as u32).collect();
                    let net = WithVelocity {
                        params: &mut *m,
                        velocity: &mut *v,
                    };
                    fast.step(net, &step, &set, &keys, &labels[r], None);
                }
                (m, v)
            }));
        }
        let (mut m, mut v) = (start.clone(), bytemuck::zeroed_box::<MnistMlp>());
        for r in batches {
            let samples: Vec<SparseInput<'_>> = r.clone().map(|k| set.get(k)).collect();
            let net = WithVelocity {
                params: &mut *m,
                velocity: &mut *v,
            };
            core_step(net, &step, &samples, &labels[r]);
        }
        for (threads, (fm, fv)) in [1, 2].iter().zip(&results) {
            let differing = |a: &MnistMlp, b: &MnistMlp| {
                (0..a.num_params())
                    .filter(|&i| a.param(i).to_bits() != b.param(i).to_bits())
                    .count()
            };
            assert_eq!(differing(fm, &m), 0, "model, {threads} thread(s)");
            assert_eq!(differing(fv, &v), 0, "velocity, {threads} thread(s)");
        }
    }
}
