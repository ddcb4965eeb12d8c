//! `digits bench`: figures measured side by side in one run (medians, ratios).

use digits_core::numgrad::central_differences;
use digits_core::pixels::normalize;
use digits_core::structured_numgrad::SampleState;
use digits_core::{MnistMlp, Rng};

use crate::data::Split;
use crate::tools::measure::{median, time};

use crate::train::numeric_gradient;

/// One full numerical gradient of `Mlp<784,128,10>` (every parameter, f32): the definition
/// once, the structured version single-threaded and on all threads as training computes it
/// (median of `repeats`).
pub fn numgrad(test: &Split, batches: &[usize], repeats: usize, step: f32) {
    let mut model: Box<MnistMlp> = bytemuck::zeroed_box();
    model.init(&mut Rng::new(1));
    println!(
        "one full numerical gradient of 784-128-10 (101,770 parameters), f32, h = {step:e}; \
         {} threads available",
        rayon::current_num_threads()
    );
    println!(
        "{:>6} {:>16} {:>20} {:>20} {:>10} {:>12}",
        "batch",
        "definition (s)",
        "structured 1 thr (s)",
        "structured all (s)",
        "speed-up",
        "max |diff|"
    );
    for &batch in batches {
        let pixels = &test.images[..batch];
        let labels = &test.labels[..batch];
        let xs: Vec<[f32; 784]> = pixels
            .iter()
            .map(|p| {
                let mut x = [0.0f32; 784];
                normalize(p, &mut x);
                x
            })
            .collect();

        let mut definition: Box<MnistMlp> = bytemuck::zeroed_box();
        let (t_def, ()) = time(|| {
            central_differences(&mut *model, step, |m| m.loss(&xs, labels), &mut *definition)
        });

        let mut structured: Box<MnistMlp> = bytemuck::zeroed_box();
        let mut states = vec![SampleState::default(); batch];
        let single: Vec<f64> = (0..repeats)
            .map(|_| {
                time(|| model.numeric_gradient(pixels, labels, step, &mut states, &mut structured))
                    .0
            })
            .collect();
        let mut columns = vec![[0.0f32; 784]; 128];
        let mut threaded_grad: Box<MnistMlp> = bytemuck::zeroed_box();
        let threaded: Vec<f64> = (0..repeats)
            .map(|_| {
                time(|| {
                    numeric_gradient(
                        &model,
                        pixels,
                        labels,
                        step,
                        &mut states,
                        &mut columns,
                        &mut threaded_grad,
                    )
                })
                .0
            })
            .collect();
        use digits_core::Params;
        let worst = (0..definition.num_params())
            .map(|i| (definition.param(i) - structured.param(i)).abs())
            .fold(0.0f32, f32::max);
        let (t1, tn) = (median(single), median(threaded));
        println!(
            "{batch:>6} {t_def:>16.2} {t1:>20.4} {tn:>20.4} {:>9.0}x {worst:>12.2e}",
            t_def / tn
        );
    }
}
