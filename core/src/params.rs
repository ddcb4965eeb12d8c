//! A model's parameters as named tensors, and as one flat vector.
//!
//! Optimizers walk the tensors; numerical differentiation walks the flat view, so it works the
//! same for a plain slice and for a whole network.

use crate::Scalar;

/// What a tensor is for; weight decay applies to weights only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A weight matrix (decayed by L2).
    Weight,
    /// A bias or a normalization shift/scale (not decayed).
    Bias,
}

/// A read-only tensor of a model.
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a, S> {
    /// Name for reports, e.g. `"W1"`.
    pub name: &'static str,
    /// Weight or bias.
    pub kind: TensorKind,
    /// Values, row-major.
    pub data: &'a [S],
}

/// A mutable tensor of a model.
#[derive(Debug)]
pub struct TensorMut<'a, S> {
    /// Name for reports, e.g. `"W1"`.
    pub name: &'static str,
    /// Weight or bias.
    pub kind: TensorKind,
    /// Values, row-major.
    pub data: &'a mut [S],
}

/// A set of parameter tensors. Two values of the same type have the same tensors in the same
/// order, which is what lets a gradient or a velocity have the shape of the model.
pub trait Params<S: Scalar> {
    /// Number of tensors.
    fn tensor_count(&self) -> usize;
    /// Tensor `k`, `k < tensor_count()`.
    fn tensor(&self, k: usize) -> Tensor<'_, S>;
    /// Tensor `k`, mutably.
    fn tensor_mut(&mut self, k: usize) -> TensorMut<'_, S>;

    /// Total number of scalars.
    fn num_params(&self) -> usize {
        (0..self.tensor_count())
            .map(|k| self.tensor(k).data.len())
            .sum()
    }

    /// Maps a flat index to (tensor, index within it). Panics when out of range.
    fn locate(&self, mut i: usize) -> (usize, usize) {
        for k in 0..self.tensor_count() {
            let len = self.tensor(k).data.len();
            if i < len {
                return (k, i);
            }
            i -= len;
        }
        panic!("parameter index out of range");
    }

    /// Flat parameter `i` (tensors concatenated in order).
    fn param(&self, i: usize) -> S {
        let (k, j) = self.locate(i);
        self.tensor(k).data[j]
    }

    /// Sets flat parameter `i`.
    fn set_param(&mut self, i: usize, v: S) {
        let (k, j) = self.locate(i);
        self.tensor_mut(k).data[j] = v;
    }

    /// Sets every parameter to zero.
    fn fill_zero(&mut self) {
        for k in 0..self.tensor_count() {
            self.tensor_mut(k).data.fill(S::ZERO);
        }
    }

    /// Multiplies every parameter by `factor`.
    fn scale(&mut self, factor: S) {
        for k in 0..self.tensor_count() {
            for v in self.tensor_mut(k).data.iter_mut() {
                *v *= factor;
            }
        }
    }

    /// True when every parameter is finite.
    fn all_finite(&self) -> bool {
        (0..self.tensor_count()).all(|k| self.tensor(k).data.iter().all(|v| v.is_finite()))
    }
}

impl<S: Scalar> Params<S> for [S] {
    fn tensor_count(&self) -> usize {
        1
    }
    fn tensor(&self, _k: usize) -> Tensor<'_, S> {
        Tensor {
            name: "params",
            kind: TensorKind::Weight,
            data: self,
        }
    }
    fn tensor_mut(&mut self, _k: usize) -> TensorMut<'_, S> {
        TensorMut {
            name: "params",
            kind: TensorKind::Weight,
            data: self,
        }
    }
    fn param(&self, i: usize) -> S {
        self[i]
    }
    fn set_param(&mut self, i: usize, v: S) {
        self[i] = v;
    }
}

/// Copies every parameter of `src` into `dst` (same tensors), converting the scalar type:
/// an `f64` model made `f32` for deployment, or the reverse for a gradient check.
pub fn convert<S: Scalar, T: Scalar>(
    src: &(impl Params<S> + ?Sized),
    dst: &mut (impl Params<T> + ?Sized),
) {
    assert_eq!(src.tensor_count(), dst.tensor_count(), "tensor count");
    for k in 0..src.tensor_count() {
        let s = src.tensor(k);
        let d = dst.tensor_mut(k);
        assert_eq!(
            s.data.len(),
            d.data.len(),
            "tensor {} differs in size",
            s.name
        );
        for (d, &s) in d.data.iter_mut().zip(s.data) {
            *d = T::from_f64(s.to_f64());
        }
    }
}
