//! Distillation (Hinton, Vinyals, Dean 2015): the student learns from a teacher's soft
//! targets, its probabilities at a temperature, mixed with the hard labels. The teacher is one
//! or more model files `digits train` made; several are an ensemble, their probabilities
//! averaged. The targets are computed for each epoch's images as distorted, so the teacher
//! answers for exactly what the student sees.

use anyhow::{Result, bail};
use digits_core::loss::Distill;
use serde::Serialize;

use crate::evaluate::infer::logits_batch;
use crate::model_io::{self, Weights};
use crate::train::aligned::ModelBox;

/// What `--teacher`, `--temperature` and `--distill-weight` ask for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Distillation {
    /// The teacher's model files (f32); several are an ensemble.
    pub teachers: Vec<String>,
    /// The temperature of both softmaxes.
    pub temperature: f64,
    /// The soft targets' share of the loss.
    pub weight: f64,
}

/// The teacher, loaded.
pub struct Teacher {
    models: Vec<ModelBox>,
    temperature: f32,
}

impl Distillation {
    /// The loss's parameters, as the core's step takes them.
    pub fn loss(&self) -> Distill<f32> {
        Distill {
            temperature: self.temperature as f32,
            weight: self.weight as f32,
        }
    }

    /// Reads the teacher's model files: f32 models of MNIST.
    pub fn load(&self) -> Result<Teacher> {
        let mut models = Vec::new();
        for path in &self.teachers {
            let path = std::path::Path::new(path);
            if !path.exists() {
                bail!(
                    "--teacher: no model file at {}; train one first with `digits train --out {}`",
                    model_io::where_is(path),
                    path.display()
                );
            }
            match model_io::load_weights(path)?.weights {
                Weights::F32(model) => models.push(model),
                _ => bail!(
                    "--teacher {}: an f32 model file is needed (the one `digits train` writes), not a quantized one",
                    path.display()
                ),
            }
        }
        Ok(Teacher {
            models,
            temperature: self.temperature as f32,
        })
    }
}

impl Teacher {
    /// The teacher's probabilities at its temperature for every image of `images`, into `out`
    /// (resized): the mean over the ensemble's models.
    pub fn targets(&self, images: &[[u8; 784]], out: &mut Vec<[f32; 10]>) {
        use rayon::prelude::*;
        out.clear();
        out.resize(images.len(), [0.0; 10]);
        let mut logits = vec![[0.0f32; 10]; images.len()];
        let share = 1.0 / self.models.len() as f32;
        for model in &self.models {
            logits_batch(model, images, &mut logits);
            out.par_iter_mut().zip(&logits).for_each(|(q, z)| {
                let zt = z.map(|v| v / self.temperature);
                let mut p = [0.0f32; 10];
                digits_core::softmax::softmax(&zt, &mut p);
                for (q, p) in q.iter_mut().zip(p) {
                    *q += share * p;
                }
            });
        }
    }
}
