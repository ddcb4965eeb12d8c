//! `digits eval`: how well a model file does on the test split. Accuracy and loss, per-class
//! precision, recall and F1, the confusion matrix; as tables, or as one JSON object for scripts;
//! and, with `--plots`, as pictures (see [`super::plots`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use digits_core::loss::cross_entropy;
use digits_core::softmax::argmax;
use rayon::prelude::*;
use serde::Serialize;

use super::{infer, plots};
use crate::cli::number::Within;
use crate::data::{DatasetKind, Split};
use crate::model_io::{self, Weights};
use crate::train::EpochReport;

/// Number of classes (digits 0-9, or the ten Fashion-MNIST garments).
pub const CLASSES: usize = 10;

/// Test images in the picture of digits (a 10 x 10 grid).
const TILES: usize = 100;
/// At most this many of them are misclassified images picked from anywhere in the test split:
/// a good model gets only two or three of the first hundred wrong, and its mistakes are what the
/// picture is for; the rest are the first test images, to show what "right" looks like.
const MAX_WRONG_TILES: usize = 40;

/// Options of `digits eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The model file to evaluate.
    #[arg(long, value_name = "FILE", default_value = "model.digits")]
    model: PathBuf,
    #[command(flatten)]
    data: crate::data::command::DataArgs,
    /// Print one JSON object (the same figures) instead of the tables.
    #[arg(long)]
    json: bool,
    /// Draw PNG pictures into this directory: confusion.png, digits.png, and curves.png with
    /// --metrics.
    #[arg(long, value_name = "DIR", value_parser = crate::cli::output::Output::DIR)]
    plots: Option<PathBuf>,
    /// The JSON-lines file of `digits train --metrics`, drawn as training curves (needs --plots).
    #[arg(long, value_name = "FILE", requires = "plots")]
    metrics: Option<PathBuf>,
    /// Instead: the test accuracy under each distortion separately (rotation, shift, scale,
    /// stroke width, elastic, the `data shift` writers), fixed parameters.
    #[arg(long, conflicts_with_all = ["plots", "metrics"])]
    robustness: bool,
    /// Rotations of --robustness, degrees, each both ways (between 0 and 180).
    #[arg(long, value_name = "DEG,...", value_delimiter = ',', default_value = "10,20", requires = "robustness",
          value_parser = Within::at_least(0.0).at_most(180.0))]
    rotations: Vec<f64>,
    /// Shifts of --robustness, pixels, each in four directions (between 0 and 28).
    #[arg(long, value_name = "PX,...", value_delimiter = ',', default_value = "2,4", requires = "robustness",
          value_parser = Within::at_least(0.0).at_most(28.0))]
    shifts: Vec<f64>,
    /// Size factors of --robustness (between 0.25 and 4).
    #[arg(long, value_name = "S,...", value_delimiter = ',', default_value = "0.8,1.2", requires = "robustness",
          value_parser = Within::at_least(0.25).at_most(4.0))]
    scales: Vec<f64>,
    /// The `digits data shift --writer SEED` writers of --robustness.
    #[arg(
        long,
        value_name = "SEED,...",
        value_delimiter = ',',
        default_value = "1,2,3",
        requires = "robustness"
    )]
    writers: Vec<u64>,
}

/// Precision, recall and F1 of one class, from a confusion matrix.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// The class, 0-based.
    pub class: usize,
    /// Images whose true class this is (row sum).
    pub support: u64,
    /// Images predicted as this class (column sum).
    pub predicted: u64,
    /// Images of this class predicted as this class (the diagonal cell).
    pub correct: u64,
    /// correct / predicted; 0 when the class is never predicted.
    pub precision: f64,
    /// correct / support; 0 when the class never occurs.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
}

/// Unweighted means over the classes (each class counts the same, however many images it has).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Averages {
    /// Mean precision.
    pub precision: f64,
    /// Mean recall.
    pub recall: f64,
    /// Mean F1 (of the per-class F1s, not the F1 of the mean precision and recall).
    pub f1: f64,
}

/// Everything `digits eval` reports; printed as tables or serialized as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// The model file.
    pub model: String,
    /// The dataset whose test split was used.
    pub dataset: String,
    /// Test images.
    pub images: u64,
    /// Of which classified correctly.
    pub correct: u64,
    /// correct / images.
    pub accuracy: f64,
    /// Mean cross-entropy over the test images.
    pub loss: f64,
    /// The test accuracy the model file records from training, if any: it should match.
    pub recorded_accuracy: Option<f64>,
    /// Name of each class (the digit itself for MNIST).
    pub class_names: [&'static str; CLASSES],
    /// Per-class figures, by class.
    pub classes: Vec<ClassMetrics>,
    /// Macro averages of the per-class figures.
    pub macro_average: Averages,
    /// `confusion[true][predicted]`: how many test images of class `true` got `predicted`.
    pub confusion: [[u64; CLASSES]; CLASSES],
}

/// `a / b`, with 0 for 0 / 0 so that an absent class gives 0, never NaN (which JSON cannot even
/// represent).
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Counts (true label, predicted label) pairs: `m[label][prediction]`.
pub fn confusion_matrix<const N: usize>(labels: &[u8], predicted: &[u8]) -> [[u64; N]; N] {
    assert_eq!(labels.len(), predicted.len(), "one prediction per label");
    let mut m = [[0u64; N]; N];
    for (&t, &p) in labels.iter().zip(predicted) {
        m[t as usize][p as usize] += 1;
    }
    m
}

/// Fraction of the matrix on its diagonal; 0 for an empty matrix.
pub fn accuracy<const N: usize>(m: &[[u64; N]; N]) -> f64 {
    let diagonal = (0..N).map(|k| m[k][k]).sum();
    ratio(diagonal, m.iter().flatten().sum())
}

/// Precision, recall and F1 of every class of a confusion matrix (rows: true class, columns:
/// predicted class).
pub fn class_metrics<const N: usize>(m: &[[u64; N]; N]) -> Vec<ClassMetrics> {
    (0..N)
        .map(|k| {
            let correct = m[k][k];
            let support = m[k].iter().sum();
            let predicted = m.iter().map(|row| row[k]).sum();
            let precision = ratio(correct, predicted);
            let recall = ratio(correct, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                class: k,
                support,
                predicted,
                correct,
                precision,
                recall,
                f1,
            }
        })
        .collect()
}

/// Macro averages of per-class figures; zeros when there are no classes.
pub fn macro_average(classes: &[ClassMetrics]) -> Averages {
    let n = classes.len().max(1) as f64;
    Averages {
        precision: classes.iter().map(|c| c.precision).sum::<f64>() / n,
        recall: classes.iter().map(|c| c.recall).sum::<f64>() / n,
        f1: classes.iter().map(|c| c.f1).sum::<f64>() / n,
    }
}

/// The class names of a dataset, for tables and pictures.
pub fn class_names(kind: DatasetKind) -> [&'static str; CLASSES] {
    match kind {
        DatasetKind::Fashion => [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
        _ => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    }
}

/// The network's prediction and cross-entropy for every image of `split`, in parallel (f32:
/// [`infer::logits_batch`], the same logits as the device's).
pub fn predict(weights: &Weights, split: &Split) -> Vec<(u8, f64)> {
    let logits: Vec<[f32; 10]> = match weights {
        Weights::F32(model) => {
            let mut out = vec![[0.0; 10]; split.images.len()];
            infer::logits_batch(model, &split.images, &mut out);
            out
        }
        Weights::Int8(_) | Weights::Compact(_) => {
            let model = weights.classifier();
            split
                .images
                .par_iter()
                .map(|image| model.classify(image))
                .collect()
        }
    };
    logits
        .iter()
        .zip(&split.labels)
        .map(|(z, &label)| (argmax(z) as u8, cross_entropy(z, label as usize) as f64))
        .collect()
}

/// Which test images the picture of digits shows, in order: the first `max_wrong`
/// misclassified ones, wherever they are, and the first images of the split for the rest of
/// the `count` places. `wrong[i]` says whether image `i` was misclassified.
pub fn pick_tiles(wrong: &[bool], count: usize, max_wrong: usize) -> Vec<usize> {
    let count = count.min(wrong.len());
    let mut chosen = vec![false; wrong.len()];
    let mut left = count;
    for i in (0..wrong.len())
        .filter(|&i| wrong[i])
        .take(max_wrong.min(count))
    {
        chosen[i] = true;
        left -= 1;
    }
    for c in chosen.iter_mut().filter(|c| !**c) {
        if left == 0 {
            break;
        }
        *c = true;
        left -= 1;
    }
    (0..wrong.len()).filter(|&i| chosen[i]).collect()
}

/// Reads the metrics file of `digits train --metrics`: one `EpochReport` per line (blank lines
/// are skipped). A line that is not one names its line number.
pub fn parse_metrics(text: &str) -> Result<Vec<EpochReport>> {
    let mut reports = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let report: EpochReport = serde_json::from_str(line).with_context(|| {
            format!(
                "line {} is not an epoch report of `digits train --metrics`",
                n + 1
            )
        })?;
        reports.push(report);
    }
    if reports.is_empty() {
        bail!("no epoch reports in it");
    }
    Ok(reports)
}

/// Reads and parses a metrics file; errors name the file.
fn read_metrics(path: &Path) -> Result<Vec<EpochReport>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read metrics file {}", path.display()))?;
    parse_metrics(&text).with_context(|| format!("metrics file {}", path.display()))
}

/// Gathers the report from the true labels and the model's `answers` (from [`predict`]).
pub fn report(labels: &[u8], answers: &[(u8, f64)], names: [&'static str; CLASSES]) -> EvalReport {
    let predicted: Vec<u8> = answers.iter().map(|a| a.0).collect();
    let confusion = confusion_matrix::<CLASSES>(labels, &predicted);
    let classes = class_metrics(&confusion);
    let images = labels.len() as u64;
    let correct = classes.iter().map(|c| c.correct).sum();
    EvalReport {
        model: String::new(),
        dataset: String::new(),
        images,
        correct,
        accuracy: accuracy(&confusion),
        loss: answers.iter().map(|a| a.1).sum::<f64>() / images.max(1) as f64,
        recorded_accuracy: None,
        class_names: names,
        macro_average: macro_average(&classes),
        classes,
        confusion,
    }
}

/// The report as text: overall figures, the per-class table, the confusion matrix.
pub fn render_text(r: &EvalReport) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail; `let _ =` keeps the tables readable.
    let _ = writeln!(
        s,
        "{} on the {} test split ({} images)",
        r.model, r.dataset, r.images
    );
    let _ = write!(
        s,
        "accuracy {:.2}% ({} of {}, {} misclassified)  loss {:.4}",
        100.0 * r.accuracy,
        r.correct,
        r.images,
        r.images - r.correct,
        r.loss
    );
    if let Some(a) = r.recorded_accuracy {
        let _ = write!(s, "  (the model file records {:.2}%)", 100.0 * a);
    }
    let _ = writeln!(s, "\n");

    // The class column shows "k" for digits and "k name" for Fashion-MNIST.
    let label = |k: usize| match r.class_names[k] {
        name if name == k.to_string() => name.to_string(),
        name => format!("{k} {name}"),
    };
    let width = (0..CLASSES)
        .map(|k| label(k).len())
        .max()
        .unwrap_or(1)
        .max(5);
    let _ = writeln!(
        s,
        "{:<width$}  {:>7}  {:>9}  {:>7}  {:>7}",
        "class", "support", "precision", "recall", "F1"
    );
    for c in &r.classes {
        let _ = writeln!(
            s,
            "{:<width$}  {:>7}  {:>9.4}  {:>7.4}  {:>7.4}",
            label(c.class),
            c.support,
            c.precision,
            c.recall,
            c.f1
        );
    }
    let m = &r.macro_average;
    let _ = writeln!(
        s,
        "{:<width$}  {:>7}  {:>9.4}  {:>7.4}  {:>7.4}\n",
        "macro", r.images, m.precision, m.recall, m.f1
    );

    let _ = writeln!(
        s,
        "confusion matrix (rows: true class, columns: predicted class)"
    );
    let width = width.max(9);
    let _ = write!(s, "{:<width$}", "true\\pred");
    for k in 0..CLASSES {
        let _ = write!(s, "  {k:>5}");
    }
    let _ = writeln!(s);
    for (k, row) in r.confusion.iter().enumerate() {
        let _ = write!(s, "{:<width$}", label(k));
        for &n in row {
            let _ = write!(s, "  {n:>5}");
        }
        let _ = writeln!(s);
    }
    s
}

/// `digits eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    // The files named on the command line are checked before the data is read (a second or so),
    // so a typo fails at once.
    if !args.model.exists() {
        bail!(
            "no model file at {}: train one with `digits train --out {}`, or pass --model FILE",
            model_io::where_is(&args.model),
            args.model.display()
        );
    }
    let loaded = model_io::load_weights(&args.model)?;
    let metrics = args.metrics.as_deref().map(read_metrics).transpose()?;

    let dataset = crate::data::command::load_test(&args.data)?;
    let trained_on = &loaded.provenance.dataset;
    let evaluated_on = dataset.kind.to_string();
    // Scoring a Fashion-MNIST model on digits (or the reverse) gives meaningless figures.
    if !trained_on.is_empty() && *trained_on != evaluated_on {
        bail!(
            "model file {} was trained on {trained_on}, not {evaluated_on}: pass the matching --dataset",
            args.model.display()
        );
    }
    let test = &dataset.test;
    if test.labels.is_empty() {
        bail!("the test split has no images");
    }
    // A label outside 0-9 would index out of the logits; say so instead of panicking.
    if let Some(i) = test.labels.iter().position(|&l| l as usize >= CLASSES) {
        bail!("test label {i} is {}, not a class 0-9", test.labels[i]);
    }
    if args.robustness {
        let plan = super::robustness::Plan {
            rotations: args.rotations,
            shifts: args.shifts,
            scales: args.scales,
            writers: args.writers,
        };
        let model = args.model.display().to_string();
        let report = super::robustness::measure(&loaded.weights, test, &plan, &model);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", super::robustness::render_text(&report));
        }
        return Ok(());
    }
    let names = class_names(dataset.kind);
    let answers = predict(&loaded.weights, test);
    let mut report = report(&test.labels, &answers, names);
    report.model = args.model.display().to_string();
    report.dataset = evaluated_on;
    report.recorded_accuracy = loaded.provenance.test_accuracy.map(f64::from);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_text(&report));
    }

    if let Some(dir) = &args.plots {
        crate::cli::output::create_dir("--plots", dir)?;
        let mut written = Vec::new();
        let path = dir.join("confusion.png");
        plots::confusion(&path, &report.confusion, &names)?;
        written.push(path);

        let predicted: Vec<u8> = answers.iter().map(|a| a.0).collect();
        let wrong: Vec<bool> = predicted
            .iter()
            .zip(&test.labels)
            .map(|(p, t)| p != t)
            .collect();
        let tiles = pick_tiles(&wrong, TILES, MAX_WRONG_TILES);
        let path = dir.join("digits.png");
        plots::digits(&path, test, &predicted, &tiles)?;
        written.push(path);

        if let Some(reports) = &metrics {
            let path = dir.join("curves.png");
            plots::curves(&path, reports)?;
            written.push(path);
        }
        // Keep stdout pure JSON under --json.
        for path in written {
            if args.json {
                eprintln!("wrote {}", path.display());
            } else {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Three classes; class 2 occurs once and is never predicted.
    ///   true 0: 5 right, 1 taken for a 1
    ///   true 1: 2 taken for a 0, 3 right
    ///   true 2: 1 taken for a 0
    const M: [[u64; 3]; 3] = [[5, 1, 0], [2, 3, 0], [1, 0, 0]];

    #[test]
    fn per_class_figures_match_hand_computed_values() {
        let c = class_metrics(&M);
        // Class 0: 5 right of 6 true, of 8 predicted.  F1 = 2*5 / (2*5 + 3 + 1) = 5/7.
        assert_eq!((c[0].correct, c[0].support, c[0].predicted), (5, 6, 8));
        assert!(close(c[0].precision, 5.0 / 8.0));
        assert!(close(c[0].recall, 5.0 / 6.0));
        assert!(close(c[0].f1, 5.0 / 7.0));
        // Class 1: 3 right of 5 true, of 4 predicted.  F1 = 2*3 / (2*3 + 1 + 2) = 2/3.
        assert_eq!((c[1].correct, c[1].support, c[1].predicted), (3, 5, 4));
        assert!(close(c[1].precision, 0.75));
        assert!(close(c[1].recall, 0.6));
        assert!(close(c[1].f1, 2.0 / 3.0));
        // Class 2: never predicted: precision 0 by definition (not 0/0 = NaN).
        assert_eq!((c[2].correct, c[2].support, c[2].predicted), (0, 1, 0));
        assert_eq!((c[2].precision, c[2].recall, c[2].f1), (0.0, 0.0, 0.0));

        assert!(close(accuracy(&M), 8.0 / 12.0));
        let avg = macro_average(&c);
        assert!(close(avg.precision, (0.625 + 0.75) / 3.0));
        assert!(close(avg.recall, (5.0 / 6.0 + 0.6) / 3.0));
        assert!(close(avg.f1, 29.0 / 63.0));
    }

    #[test]
    fn absent_classes_and_empty_matrices_give_zeros_not_nan() {
        // Class 1 neither occurs nor is predicted.
        let c = class_metrics(&[[4, 0], [0, 0]]);
        assert_eq!((c[1].precision, c[1].recall, c[1].f1), (0.0, 0.0, 0.0));
        assert_eq!((c[0].precision, c[0].recall, c[0].f1), (1.0, 1.0, 1.0));
        let empty = [[0u64; 10]; 10];
        assert_eq!(accuracy(&empty), 0.0);
        let avg = macro_average(&class_metrics(&empty));
        assert_eq!((avg.precision, avg.recall, avg.f1), (0.0, 0.0, 0.0));
        assert!(serde_json::to_string(&avg).is_ok());
    }

    #[test]
    fn confusion_matrix_counts_rows_true_columns_predicted() {
        let m = confusion_matrix::<3>(&[0, 0, 1, 2, 2], &[0, 1, 1, 0, 2]);
        assert_eq!(m, [[1, 1, 0], [0, 1, 0], [1, 0, 1]]);
    }

    #[test]
    fn tiles_are_the_first_mistakes_then_the_first_images() {
        let mut wrong = vec![false; 50];
        for i in [3, 20, 30, 40] {
            wrong[i] = true;
        }
        // Room for two mistakes: 3 and 20, then the first images 0, 1, 2, 4, ... up to 10 tiles.
        assert_eq!(
            pick_tiles(&wrong, 10, 2),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 20]
        );
        // More room than images: everything, once.
        assert_eq!(pick_tiles(&wrong[..5], 10, 4), vec![0, 1, 2, 3, 4]);
        // More mistakes allowed than places: only `count`.
        assert_eq!(pick_tiles(&wrong, 2, 10), vec![3, 20]);
    }

    #[test]
    fn metrics_lines_parse_and_a_bad_line_is_named() {
        let line = r#"{"epoch":1,"lr":0.05,"train_loss":0.5,"train_accuracy":0.85,"val_loss":0.3,"val_accuracy":0.9,"seconds":1.0,"samples_per_second":5000.0}"#;
        let reports = parse_metrics(&format!("{line}\n\n{line}\n")).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].val_accuracy, Some(0.9));
        // A run with `--validation 0` has no validation figures.
        let unvalidated = line.replace("0.3", "null").replace("0.9", "null");
        let reports = parse_metrics(&unvalidated).unwrap();
        assert_eq!((reports[0].val_loss, reports[0].val_accuracy), (None, None));

        let err = parse_metrics(&format!("{line}\n{{\"epoch\": 2}}\n")).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        assert!(parse_metrics("\n").is_err());
    }

    #[test]
    fn text_report_has_the_tables() {
        let m = [[3u64; CLASSES]; CLASSES];
        let classes = class_metrics(&m);
        let r = EvalReport {
            model: "m.digits".into(),
            dataset: "mnist".into(),
            images: 300,
            correct: 30,
            accuracy: accuracy(&m),
            loss: 2.3,
            recorded_accuracy: Some(0.1),
            class_names: class_names(DatasetKind::Mnist),
            macro_average: macro_average(&classes),
            classes,
            confusion: m,
        };
        let text = render_text(&r);
        assert!(text.contains("accuracy 10.00% (30 of 300, 270 misclassified)"));
        assert!(text.contains("class  support  precision   recall       F1"));
        assert!(text.contains("macro      300     0.1000   0.1000   0.1000"));
        assert_eq!(text.lines().filter(|l| l.ends_with("      3")).count(), 10);
    }
}
