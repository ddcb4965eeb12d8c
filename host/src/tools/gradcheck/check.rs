//! The comparisons `digits gradcheck` makes, each element against its own bound
//! ([`super::bound`]).

use digits_core::{Params, Rng, Scalar};
use serde::Serialize;

use super::bound::{Bounds, Stack, unit_roundoff};
use super::subject::Subject;

/// Largest central-difference step: the loss is probed near the parameter, not far away.
const MAX_STEP: f64 = 1.0 / 16.0;
/// Below this the step is lost in the parameter's own rounding.
const MIN_STEP: f64 = 1e-18;

/// One parameter's comparison.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Element {
    /// Index within its tensor.
    pub index: usize,
    /// Backprop's value.
    pub analytic: f64,
    /// The value compared with.
    pub reference: f64,
    /// The largest `|analytic - reference|` a correct gradient can show here.
    pub bound: f64,
    /// Central-difference step used (absent for backprop against backprop).
    pub step: Option<f64>,
}

impl Element {
    fn error(&self) -> f64 {
        (self.analytic - self.reference).abs()
    }
    /// Error over bound; NaN counts as infinitely far.
    fn ratio(&self) -> f64 {
        let e = self.error();
        if e == 0.0 {
            0.0
        } else if e <= self.bound {
            e / self.bound
        } else {
            f64::INFINITY.min(e / self.bound.max(f64::MIN_POSITIVE))
        }
    }
}

/// One tensor's comparisons.
#[derive(Clone, Debug, Serialize)]
pub struct TensorReport {
    /// Tensor name.
    pub name: &'static str,
    /// Parameters compared.
    pub checked: usize,
    /// Of these, parameters whose gradient exceeds its bound, so that a wrong sign there could
    /// not pass: only they make the check able to fail.
    pub resolved: usize,
    /// Parameters within rounding of a kink (a ReLU's 0, a clipped ReLU's ceiling) for some
    /// sample: the loss has no derivative there to compare, so they are not judged.
    pub at_kink: usize,
    /// Parameters outside their bound.
    pub beyond: usize,
    /// Largest `|analytic - reference|`.
    pub max_error: f64,
    /// Largest bound.
    pub max_bound: f64,
    /// The parameter with the largest error relative to its bound.
    pub worst: Option<Element>,
}

impl TensorReport {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            checked: 0,
            resolved: 0,
            at_kink: 0,
            beyond: 0,
            max_error: 0.0,
            max_bound: 0.0,
            worst: None,
        }
    }

    fn record(&mut self, e: Element) {
        self.checked += 1;
        let err = e.error();
        // NaN is beyond every bound.
        if err.is_nan() || err > e.bound {
            self.beyond += 1;
        }
        if e.analytic.abs() > e.bound {
            self.resolved += 1;
        }
        self.max_error = self
            .max_error
            .max(if err.is_nan() { f64::INFINITY } else { err });
        self.max_bound = self.max_bound.max(e.bound);
        if self
            .worst
            .is_none_or(|w| e.ratio() > w.ratio() || e.error().is_nan())
        {
            self.worst = Some(e);
        }
    }
}

/// What a check's result means for the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Its failure fails the check, and it must resolve every tensor.
    Decides,
    /// Its failure fails the check; where it resolves nothing it is only reported.
    Judged,
}

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every parameter within its bound, every tensor resolved.
    Pass,
    /// Some parameter outside its bound.
    Fail,
    /// Every parameter within its bound, but some tensor has no resolved parameter: the check
    /// could not have seen a wrong gradient there.
    Unresolved,
}

/// One comparison over the network.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Precision of the analytic gradient checked, "f64" or "f32".
    pub precision: &'static str,
    /// What it is compared with.
    pub method: &'static str,
    /// Whether it decides.
    pub role: Role,
    /// Bound on the rounding error of the mean loss in this precision (central differences).
    pub loss_rounding: Option<f64>,
    /// The mean loss.
    pub loss: f64,
    /// Per tensor.
    pub tensors: Vec<TensorReport>,
    /// The result.
    pub verdict: Verdict,
}

impl CheckReport {
    fn finish(mut self) -> Self {
        self.verdict = if self.tensors.iter().any(|t| t.beyond > 0) {
            Verdict::Fail
        } else if self.tensors.iter().any(|t| t.resolved == 0) {
            Verdict::Unresolved
        } else {
            Verdict::Pass
        };
        self
    }

    /// True when this check makes the whole check fail.
    pub fn fails(&self) -> bool {
        matches!(
            (self.verdict, self.role),
            (Verdict::Fail, _) | (Verdict::Unresolved, Role::Decides)
        )
    }
}

/// A wrong gradient planted on purpose: the sign of one tensor of backprop's result in one
/// precision is flipped. It exists only so the tests can show that the checker fails on a wrong
/// gradient and names the tensor.
#[derive(Clone, Copy, Debug)]
pub struct PlantedFault {
    /// "f32" or "f64".
    pub precision: &'static str,
    /// Tensor index (W1, b1, W2, b2, ...).
    pub tensor: usize,
}

/// The batch as the network's inputs, in precision `S`.
fn inputs<N: Subject, S: Scalar>(subject: &N, pixels: &[[u8; 784]]) -> Vec<N::Input<S>> {
    pixels.iter().map(|p| subject.input::<S>(p)).collect()
}

/// The network as the bounds see it, and the batch in `f64`.
fn reference<N: Subject>(subject: &N, pixels: &[[u8; 784]]) -> (Stack, Vec<N::Input<f64>>) {
    let stack = Stack::new(
        &*subject.network::<f64>(),
        &subject.ceilings(),
        &subject.windows(),
    );
    (stack, inputs::<N, f64>(subject, pixels))
}

/// Backprop of the mean loss in precision `S`, with the planted fault if it is for `S`.
pub fn backprop<N: Subject, S: Scalar>(
    subject: &N,
    pixels: &[[u8; 784]],
    labels: &[u8],
    fault: Option<PlantedFault>,
) -> Box<N::Net<S>> {
    let m = subject.network::<S>();
    let mut grad = subject.network::<S>();
    subject.backprop(&m, &inputs::<N, S>(subject, pixels), labels, &mut grad);
    if let Some(f) = fault.filter(|f| f.precision == S::NAME) {
        for g in grad.tensor_mut(f.tensor).data.iter_mut() {
            *g = -*g;
        }
    }
    grad
}

/// Which parameters of `net` the central differences visit: all of a tensor no larger than
/// `sample`, else `sample` drawn at random (repeats merge).
pub fn sampled<S: Scalar>(net: &(impl Params<S> + ?Sized), sample: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut wanted = vec![false; net.num_params()];
    let mut start = 0;
    for k in 0..net.tensor_count() {
        let len = net.tensor(k).data.len();
        if len <= sample {
            wanted[start..start + len].fill(true);
        } else {
            for _ in 0..sample {
                wanted[start + rng.below(len as u64) as usize] = true;
            }
        }
        start += len;
    }
    (0..wanted.len()).filter(|&i| wanted[i]).collect()
}

/// Central differences of the mean loss evaluated in precision `S`, against backprop in `S`,
/// at `indices`. Each parameter gets its own step, the one that minimizes its bound (truncation
/// `h^2 M3 / 6` against rounding `loss_rounding / h`), kept short of every ReLU kink and made a
/// power of two; the step actually taken (`w + h` and `w - h` as rounded in `S`) is the one
/// divided by and bounded.
pub fn central_differences<N: Subject, S: Scalar>(
    subject: &N,
    pixels: &[[u8; 784]],
    labels: &[u8],
    indices: &[usize],
    fault: Option<PlantedFault>,
    role: Role,
) -> CheckReport {
    let (stack, xs64) = reference(subject, pixels);
    let bounds = Bounds::new(&stack, &xs64, labels, unit_roundoff::<S>());
    let reference = Bounds::new(&stack, &xs64, labels, unit_roundoff::<f64>());
    let analytic = backprop::<N, S>(subject, pixels, labels, fault);
    let mut m = subject.network::<S>();
    let xs = inputs::<N, S>(subject, pixels);
    let mut tensors: Vec<TensorReport> = (0..m.tensor_count())
        .map(|k| TensorReport::new(m.tensor(k).name))
        .collect();
    let delta = bounds.loss_err;
    for &i in indices {
        let (k, j) = m.locate(i);
        let a = analytic.tensor(k).data[j].to_f64();
        let Some(along) = bounds.along(i) else {
            tensors[k].at_kink += 1;
            continue;
        };
        let optimal = if along.m3 > 0.0 {
            (3.0 * delta / along.m3).cbrt()
        } else {
            MAX_STEP
        };
        let h = optimal.min(MAX_STEP).min(along.max_step / 2.0);
        if h.is_nan() || h < MIN_STEP {
            tensors[k].at_kink += 1;
            continue;
        }
        let h = 2f64.powi(h.log2().floor() as i32);
        let w = m.param(i);
        let up = w + S::from_f64(h);
        let down = w - S::from_f64(h);
        m.set_param(i, up);
        let plus = subject.loss(&m, &xs, labels).to_f64();
        m.set_param(i, down);
        let minus = subject.loss(&m, &xs, labels).to_f64();
        m.set_param(i, w);
        let (hp, hm) = (up.to_f64() - w.to_f64(), w.to_f64() - down.to_f64());
        let numeric = (plus - minus) / (hp + hm);
        let truncation = hp.max(hm).powi(2) / 6.0 * along.m3 + (hp - hm).abs() / 2.0 * along.m2;
        let rounding = 2.0 * delta / (hp + hm) + 4.0 * unit_roundoff::<f64>() * numeric.abs();
        let bound = truncation + rounding + bounds.backprop_error(i) + reference.backprop_error(i);
        tensors[k].record(Element {
            index: j,
            analytic: a,
            reference: numeric,
            bound,
            step: Some(h),
        });
    }
    CheckReport {
        precision: S::NAME,
        method: "central differences of the loss (the definition), sampled parameters",
        role,
        loss_rounding: Some(delta),
        loss: bounds.loss,
        tensors,
        verdict: Verdict::Pass,
    }
    .finish()
}

/// Backprop in `f32` against backprop in `f64` (which the `f64` central differences check),
/// every parameter, each within the rounding error bound of both.
pub fn f32_against_f64<N: Subject>(
    subject: &N,
    pixels: &[[u8; 784]],
    labels: &[u8],
    fault: Option<PlantedFault>,
) -> CheckReport {
    let (stack, xs64) = reference(subject, pixels);
    let b32 = Bounds::new(&stack, &xs64, labels, unit_roundoff::<f32>());
    let b64 = Bounds::new(&stack, &xs64, labels, unit_roundoff::<f64>());
    let a32 = backprop::<N, f32>(subject, pixels, labels, fault);
    let a64 = backprop::<N, f64>(subject, pixels, labels, fault);
    let mut tensors = Vec::new();
    let mut flat = 0;
    for k in 0..a32.tensor_count() {
        let t = a32.tensor(k);
        let mut report = TensorReport::new(t.name);
        for (j, &a) in t.data.iter().enumerate() {
            let i = flat + j;
            report.record(Element {
                index: j,
                analytic: f64::from(a),
                reference: a64.tensor(k).data[j],
                bound: b32.backprop_error(i) + b64.backprop_error(i),
                step: None,
            });
        }
        flat += t.data.len();
        tensors.push(report);
    }
    CheckReport {
        precision: "f32",
        method: "backprop in f64 (checked above), every parameter",
        role: Role::Decides,
        loss_rounding: None,
        loss: b32.loss,
        tensors,
        verdict: Verdict::Pass,
    }
    .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(analytic: f64, reference: f64, bound: f64) -> Element {
        Element {
            index: 0,
            analytic,
            reference,
            bound,
            step: Some(1e-3),
        }
    }

    fn report(elements: &[Element], role: Role) -> CheckReport {
        let mut t = TensorReport::new("W2");
        for &e in elements {
            t.record(e);
        }
        CheckReport {
            precision: "f32",
            method: "test",
            role,
            loss_rounding: None,
            loss: 0.0,
            tensors: vec![t],
            verdict: Verdict::Pass,
        }
        .finish()
    }

    #[test]
    fn a_numeric_zero_against_a_resolved_gradient_fails() {
        // The case: backprop -2.0e-4, numeric exactly 0.
        let r = report(&[element(-2.049194e-4, 0.0, 1e-5)], Role::Judged);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.fails());
    }

    #[test]
    fn nothing_resolved_is_never_a_pass() {
        let r = report(&[element(1e-6, 0.0, 1e-4)], Role::Decides);
        assert_eq!(r.verdict, Verdict::Unresolved);
        assert!(r.fails(), "an undecided deciding check fails");
        let r = report(&[element(1e-6, 0.0, 1e-4)], Role::Judged);
        assert!(!r.fails(), "only reported");
    }

    #[test]
    fn nan_fails_and_is_the_worst() {
        let r = report(
            &[element(1.0, 1.0, 1e-3), element(1.0, f64::NAN, 1e-3)],
            Role::Decides,
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.tensors[0].worst.unwrap().reference.is_nan());
    }

    #[test]
    fn within_bound_and_resolved_passes() {
        let r = report(
            &[element(1e-2, 1e-2 + 1e-9, 1e-8), element(0.0, 0.0, 0.0)],
            Role::Decides,
        );
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.tensors[0].resolved, 1);
    }
}
