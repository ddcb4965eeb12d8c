//! `digits eval --robustness`: test accuracy under each distortion separately (rotation,
//! shift, scale, stroke width, elastic, and the writers of `digits data shift`), with fixed
//! parameters, so that a table says how a model fails rather than only how often. The
//! distortions are [`crate::distort`]'s, the ones training augments with.

use std::fmt::Write as _;

use serde::Serialize;

use crate::data::Split;
use crate::data::shift::Writer;
use crate::distort::{Affine, Elastic, Field, stroke};
use crate::evaluate::metrics::predict;
use crate::model_io::Weights;

/// What `--robustness` measures beyond the plain test set.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Rotations, degrees, each measured both ways.
    pub rotations: Vec<f64>,
    /// Shifts, pixels, each measured in the four directions.
    pub shifts: Vec<f64>,
    /// Size factors.
    pub scales: Vec<f64>,
    /// The writers of `digits data shift --writer SEED`.
    pub writers: Vec<u64>,
}

/// The elastic distortion measured: Simard's strength, fields from a fixed seed.
pub const ELASTIC: Elastic = Elastic {
    alpha: 34.0,
    sigma: 4.0,
};
/// The seed of the elastic fields measured (one per test image, cycling).
const ELASTIC_SEED: u64 = 0x0E1A_571C;
/// Elastic fields drawn for the measurement.
const ELASTIC_FIELDS: usize = 1000;
/// How much thicker or thinner the strokes are made (a share of a pixel on each side).
const STROKE: f64 = 1.0;

/// One distortion of the test set and the model's accuracy under it.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What kind: none, rotation, shift, scale, stroke, elastic, writer.
    pub group: &'static str,
    /// The distortion and its parameter, as the table shows it.
    pub name: String,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// `accuracy` minus the plain test set's, in percentage points.
    pub change_points: f64,
}

/// The whole table.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The model file.
    pub model: String,
    /// Test images, each measured once per row.
    pub images: usize,
    /// The plain test set first, then one row per distortion.
    pub rows: Vec<Row>,
}

/// A distortion of one test image (its index picks an elastic field).
type Distortion = Box<dyn Fn(&[u8; 784], usize) -> [u8; 784] + Sync>;

/// The distortions of `plan`, named, in table order (the plain test set first).
fn distortions(plan: &Plan) -> Vec<(&'static str, String, Distortion)> {
    let mut all: Vec<(&'static str, String, Distortion)> = vec![(
        "none",
        "none (the test set)".into(),
        Box::new(|img: &[u8; 784], _| *img),
    )];
    let affine = |a: Affine| -> Distortion {
        let warp = a.warp();
        Box::new(move |img: &[u8; 784], _| warp.apply(img, None))
    };
    for &deg in &plan.rotations {
        for sign in [1.0, -1.0] {
            let deg = sign * deg;
            all.push((
                "rotation",
                format!("rotate {deg:+}°"),
                affine(Affine::rotation(deg)),
            ));
        }
    }
    for &px in &plan.shifts {
        for (dir, dx, dy) in [
            ("right", px, 0.0),
            ("left", -px, 0.0),
            ("down", 0.0, px),
            ("up", 0.0, -px),
        ] {
            all.push((
                "shift",
                format!("shift {dir} {px} px"),
                affine(Affine::shift(dx, dy)),
            ));
        }
    }
    for &s in &plan.scales {
        all.push(("scale", format!("scale x{s}"), affine(Affine::scale(s))));
    }
    all.push((
        "stroke",
        "strokes thicker".into(),
        Box::new(|img: &[u8; 784], _| stroke::thicken(img, STROKE)),
    ));
    all.push((
        "stroke",
        "strokes thinner".into(),
        Box::new(|img: &[u8; 784], _| stroke::thin(img, STROKE)),
    ));
    let fields: Vec<Field> = ELASTIC.bank(ELASTIC_SEED, ELASTIC_FIELDS);
    let identity = Affine::IDENTITY.warp();
    all.push((
        "elastic",
        format!("elastic alpha {} sigma {}", ELASTIC.alpha, ELASTIC.sigma),
        Box::new(move |img: &[u8; 784], i| identity.apply(img, Some(&fields[i % fields.len()]))),
    ));
    for &seed in &plan.writers {
        let writer = Writer::from_seed(seed);
        all.push((
            "writer",
            format!("writer {seed} (data shift)"),
            Box::new(move |img: &[u8; 784], _| writer.draw(img)),
        ));
    }
    all
}

/// Measures `weights` on `test` under every distortion of `plan`.
pub fn measure(weights: &Weights, test: &Split, plan: &Plan, model: &str) -> Report {
    use rayon::prelude::*;
    let mut rows: Vec<Row> = Vec::new();
    for (group, name, distort) in distortions(plan) {
        let split = Split {
            images: test
                .images
                .par_iter()
                .enumerate()
                .map(|(i, img)| distort(img, i))
                .collect(),
            labels: test.labels.clone(),
        };
        let answers = predict(weights, &split);
        let correct = answers
            .iter()
            .zip(&test.labels)
            .filter(|(a, l)| a.0 == **l)
            .count();
        let accuracy = correct as f64 / test.labels.len().max(1) as f64;
        let plain = rows.first().map_or(accuracy, |r| r.accuracy);
        rows.push(Row {
            group,
            name,
            accuracy,
            change_points: 100.0 * (accuracy - plain),
        });
    }
    Report {
        model: model.to_string(),
        images: test.labels.len(),
        rows,
    }
}

/// The report as a table.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: test accuracy under each distortion ({} images each)\n",
        r.model, r.images
    );
    let width = r
        .rows
        .iter()
        .map(|row| row.name.chars().count())
        .max()
        .unwrap_or(10);
    let _ = writeln!(
        s,
        "{:<width$}  {:>8}  {:>7}",
        "distortion", "accuracy", "change"
    );
    for row in &r.rows {
        let change = if row.group == "none" {
            String::new()
        } else {
            format!("{:+.2}", row.change_points)
        };
        let pad = width - row.name.chars().count();
        let _ = writeln!(
            s,
            "{}{:pad$}  {:>7.2}%  {:>7}",
            row.name,
            "",
            100.0 * row.accuracy,
            change
        );
    }
    s
}
