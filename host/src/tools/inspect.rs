//! `digits inspect`: what a model file holds, of either precision.

use std::path::Path;

use anyhow::Result;
use digits_core::Params;

use crate::model_io;

/// Runs `digits inspect FILE`.
pub fn run(path: &Path) -> Result<()> {
    let loaded = model_io::load_weights(path)?;
    let p = &loaded.provenance;
    println!("file          {} ({} bytes)", path.display(), loaded.bytes);
    println!(
        "format        digits model, version {}",
        digits_core::model_file::FORMAT_VERSION
    );
    println!("architecture  784-128-10");
    println!("dataset       {}", p.dataset);
    match p.test_accuracy {
        Some(a) => println!("test accuracy {:.2}%", 100.0 * a),
        None => println!("test accuracy (not measured)"),
    }
    println!("seed          {}", p.seed);
    println!("epochs        {}", p.epochs);
    println!("options       {}", p.options);
    let range = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
    };
    match &loaded.weights {
        model_io::Weights::F32(model) => {
            println!("precision     f32");
            for k in 0..model.tensor_count() {
                let t = model.tensor(k);
                let (lo, hi) = range(&mut t.data.iter().map(|&v| v as f64));
                println!(
                    "tensor {:<3}   {:>6} values in [{lo:+.4}, {hi:+.4}]",
                    t.name,
                    t.data.len()
                );
            }
        }
        model_io::Weights::Int8(q) => {
            println!(
                "precision     int8 (per-channel weight scales, hidden activation step {:.5})",
                q.hidden_scale
            );
            let (lo, hi) = range(&mut q.w1.as_flattened().iter().map(|&v| v as f64));
            println!(
                "tensor W1     {:>6} codes in [{lo}, {hi}]",
                q.w1.as_flattened().len()
            );
            let (lo, hi) = range(&mut q.w2.as_flattened().iter().map(|&v| v as f64));
            println!(
                "tensor W2     {:>6} codes in [{lo}, {hi}]",
                q.w2.as_flattened().len()
            );
        }
    }
    Ok(())
}
