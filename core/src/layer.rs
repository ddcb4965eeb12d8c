//! What a [`crate::Deep`] network's hidden layers have in common: weights and biases, a forward
//! pass and the two halves of the backward pass. [`crate::Dense`] is one kind; [`crate::Conv`],
//! one small dense layer shared by every window of an image, is the other.

use crate::{Init, Rng, Scalar};

/// A layer from `I` inputs to `O` outputs with one row of weights and one bias per unit.
///
/// The weights are laid out input-major, `[ROW][UNITS]`: entry `i * UNITS + j` is the weight
/// from input `i` of a unit's row to unit `j`, as in [`crate::Dense`].
pub trait Linear<const I: usize, const O: usize, S: Scalar>:
    Clone + core::fmt::Debug + PartialEq + Send + Sync + bytemuck::Zeroable
{
    /// Inputs each unit's weights see: `I` for a dense layer, a window's values for a
    /// convolution.
    const ROW: usize;
    /// Units: one bias, one weight row and one rescale each.
    const UNITS: usize;
    /// Where the windows lie, for a convolution; `None` for a dense layer.
    const WINDOWS: Option<crate::conv::Windows>;

    /// Draws the weights with `init` and zeroes the biases.
    fn init(&mut self, init: Init, rng: &mut Rng);
    /// `y` from `x`.
    fn forward(&self, x: &[S; I], y: &mut [S; O]);
    /// Accumulates this sample's parameter gradient into `grad`, from the gradient `dy` of the
    /// outputs.
    fn backward_params(&self, x: &[S; I], dy: &[S; O], grad: &mut Self);
    /// The gradient with respect to the input (overwrites `dx`).
    fn backward_input(&self, dy: &[S; O], dx: &mut [S; I]);
    /// Weights, `[ROW][UNITS]` flat.
    fn weights(&self) -> &[S];
    /// Weights, mutably.
    fn weights_mut(&mut self) -> &mut [S];
    /// Biases, one per unit.
    fn bias(&self) -> &[S];
    /// Biases, mutably.
    fn bias_mut(&mut self) -> &mut [S];
}

/// A kind of layer, for every scalar: lets one network type hold its layers in `f32` (to train)
/// and in `f64` (to check gradients).
pub trait LayerKind<const I: usize, const O: usize> {
    /// The layer in scalar `S`.
    type Of<S: Scalar>: Linear<I, O, S>;
}

/// Dense layers ([`crate::Dense`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DenseKind;

impl<const I: usize, const O: usize> LayerKind<I, O> for DenseKind {
    type Of<S: Scalar> = crate::Dense<I, O, S>;
}

impl<const I: usize, const O: usize, S: Scalar> Linear<I, O, S> for crate::Dense<I, O, S> {
    const ROW: usize = I;
    const UNITS: usize = O;
    const WINDOWS: Option<crate::conv::Windows> = None;

    fn init(&mut self, init: Init, rng: &mut Rng) {
        crate::Dense::init(self, init, rng);
    }
    fn forward(&self, x: &[S; I], y: &mut [S; O]) {
        crate::Dense::forward(self, x, y);
    }
    fn backward_params(&self, x: &[S; I], dy: &[S; O], grad: &mut Self) {
        crate::Dense::backward_params(self, x, dy, grad);
    }
    fn backward_input(&self, dy: &[S; O], dx: &mut [S; I]) {
        crate::Dense::backward_input(self, dy, dx);
    }
    fn weights(&self) -> &[S] {
        self.w.as_flattened()
    }
    fn weights_mut(&mut self) -> &mut [S] {
        self.w.as_flattened_mut()
    }
    fn bias(&self) -> &[S] {
        &self.b
    }
    fn bias_mut(&mut self) -> &mut [S] {
        &mut self.b
    }
}
