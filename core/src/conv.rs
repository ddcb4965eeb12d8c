//! One small dense layer shared by every window of an image: a convolution without padding.
//!
//! The image (or the map a convolution made) is `side x side` positions of `channels` values,
//! position-major and channel-minor (`(y * side + x) * channels + c`). A window is `kernel x
//! kernel` positions, one every `stride` along each axis; its values, row by row, are the input
//! of the shared layer, whose units become the channels of the output map at the window's
//! position. A first layer of 8x8 windows every 4 pixels reads a 16x16 image as 9 overlapping
//! tiles with one set of weights; a second of 1x1 windows mixes the channels of each tile.
//!
//! [`Windows`] is the geometry, used alike by the float layer [`Conv`] here and by the integer
//! inference ([`crate::compact`]).

use crate::dense::Dense;
use crate::layer::{LayerKind, Linear};
use crate::{Init, Rng, Scalar};

/// Where a layer's windows lie on its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Positions along each axis of the input map.
    pub side: usize,
    /// Values per position.
    pub channels: usize,
    /// Positions along each axis of a window.
    pub kernel: usize,
    /// Positions from one window to the next, along each axis.
    pub stride: usize,
}

impl Windows {
    /// Whether the geometry is usable: every count positive, the window inside the map.
    pub const fn is_valid(&self) -> bool {
        self.side >= 1
            && self.channels >= 1
            && self.kernel >= 1
            && self.kernel <= self.side
            && self.stride >= 1
    }

    /// Windows along each axis. The geometry must be valid.
    pub const fn out_side(&self) -> usize {
        (self.side - self.kernel) / self.stride + 1
    }

    /// Windows in all.
    pub const fn positions(&self) -> usize {
        self.out_side() * self.out_side()
    }

    /// Values in one window: the shared layer's inputs.
    pub const fn patch(&self) -> usize {
        self.kernel * self.kernel * self.channels
    }

    /// Values of the input map.
    pub const fn inputs(&self) -> usize {
        self.side * self.side * self.channels
    }

    /// The index in the input map of value `e` of window `p`'s patch (the definition).
    pub const fn source(&self, p: usize, e: usize) -> usize {
        let o = self.out_side();
        let (oy, ox) = (p / o, p % o);
        let (k, c) = (e / self.channels, e % self.channels);
        let (ky, kx) = (k / self.kernel, k % self.kernel);
        ((oy * self.stride + ky) * self.side + ox * self.stride + kx) * self.channels + c
    }

    /// Copies window `p`'s values from `input` into `patch` (at least [`Windows::patch`] long):
    /// `kernel` runs of `kernel * channels` contiguous values.
    #[inline]
    pub fn gather<T: Copy>(&self, input: &[T], p: usize, patch: &mut [T]) {
        let o = self.out_side();
        let (oy, ox) = (p / o, p % o);
        let run = self.kernel * self.channels;
        for (ky, dst) in patch[..self.patch()].chunks_exact_mut(run).enumerate() {
            let start = ((oy * self.stride + ky) * self.side + ox * self.stride) * self.channels;
            dst.copy_from_slice(&input[start..start + run]);
        }
    }
}

/// A [`Dense`] layer of `UNITS` units applied to every window ([`Windows`]) of a `SIDE x SIDE`
/// map of `CHANNELS`: `KERNEL x KERNEL` windows every `STRIDE`. `PATCH` must be
/// `KERNEL^2 * CHANNELS`; as a [`Linear`] layer it takes `SIDE^2 * CHANNELS` inputs and gives
/// `positions * UNITS` outputs (checked when compiled).
#[derive(Clone, Debug, PartialEq, bytemuck::Zeroable)]
#[zeroable(bound = "")]
#[repr(C)]
pub struct Conv<
    const SIDE: usize,
    const CHANNELS: usize,
    const KERNEL: usize,
    const STRIDE: usize,
    const PATCH: usize,
    const UNITS: usize,
    S: Scalar = f32,
> {
    /// The shared layer: `w[e][j]` from value `e` of a window to unit `j`.
    pub kernel: Dense<PATCH, UNITS, S>,
}

impl<
    const SIDE: usize,
    const CHANNELS: usize,
    const KERNEL: usize,
    const STRIDE: usize,
    const PATCH: usize,
    const UNITS: usize,
    S: Scalar,
> Conv<SIDE, CHANNELS, KERNEL, STRIDE, PATCH, UNITS, S>
{
    /// The geometry.
    pub const WINDOWS: Windows = Windows {
        side: SIDE,
        channels: CHANNELS,
        kernel: KERNEL,
        stride: STRIDE,
    };

    /// Fails to compile unless the shapes agree: `I` inputs, `O` outputs.
    const fn shapes<const I: usize, const O: usize>() {
        let w = Self::WINDOWS;
        assert!(
            w.is_valid() && PATCH == w.patch(),
            "PATCH is KERNEL^2 * CHANNELS"
        );
        assert!(I == w.inputs(), "inputs are SIDE^2 * CHANNELS");
        assert!(O == w.positions() * UNITS, "outputs are windows * UNITS");
    }
}

impl<
    const I: usize,
    const O: usize,
    const SIDE: usize,
    const CHANNELS: usize,
    const KERNEL: usize,
    const STRIDE: usize,
    const PATCH: usize,
    const UNITS: usize,
    S: Scalar,
> Linear<I, O, S> for Conv<SIDE, CHANNELS, KERNEL, STRIDE, PATCH, UNITS, S>
{
    const ROW: usize = PATCH;
    const UNITS: usize = UNITS;
    const WINDOWS: Option<Windows> = Some(Self::WINDOWS);

    fn init(&mut self, init: Init, rng: &mut Rng) {
        self.kernel.init(init, rng);
    }

    /// Window by window: the shared layer on the window's values.
    fn forward(&self, x: &[S; I], y: &mut [S; O]) {
        const { Self::shapes::<I, O>() };
        let mut patch = [S::ZERO; PATCH];
        for (p, out) in y.chunks_exact_mut(UNITS).enumerate() {
            Self::WINDOWS.gather(x, p, &mut patch);
            let out: &mut [S; UNITS] = out.try_into().expect("UNITS values");
            self.kernel.forward(&patch, out);
        }
    }

    /// The shared layer's gradient summed over the windows, in window order.
    fn backward_params(&self, x: &[S; I], dy: &[S; O], grad: &mut Self) {
        const { Self::shapes::<I, O>() };
        let mut patch = [S::ZERO; PATCH];
        for (p, dy) in dy.chunks_exact(UNITS).enumerate() {
            Self::WINDOWS.gather(x, p, &mut patch);
            let dy: &[S; UNITS] = dy.try_into().expect("UNITS values");
            self.kernel.backward_params(&patch, dy, &mut grad.kernel);
        }
    }

    /// Each window's input gradient added where its values came from.
    fn backward_input(&self, dy: &[S; O], dx: &mut [S; I]) {
        const { Self::shapes::<I, O>() };
        dx.fill(S::ZERO);
        let mut dpatch = [S::ZERO; PATCH];
        for (p, dy) in dy.chunks_exact(UNITS).enumerate() {
            let dy: &[S; UNITS] = dy.try_into().expect("UNITS values");
            self.kernel.backward_input(dy, &mut dpatch);
            for (e, &d) in dpatch.iter().enumerate() {
                dx[Self::WINDOWS.source(p, e)] += d;
            }
        }
    }

    fn weights(&self) -> &[S] {
        self.kernel.w.as_flattened()
    }
    fn weights_mut(&mut self) -> &mut [S] {
        self.kernel.w.as_flattened_mut()
    }
    fn bias(&self) -> &[S] {
        &self.kernel.b
    }
    fn bias_mut(&mut self) -> &mut [S] {
        &mut self.kernel.b
    }
}

/// [`Conv`] layers as a [`LayerKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConvKind<
    const SIDE: usize,
    const CHANNELS: usize,
    const KERNEL: usize,
    const STRIDE: usize,
    const PATCH: usize,
    const UNITS: usize,
>;

impl<
    const I: usize,
    const O: usize,
    const SIDE: usize,
    const CHANNELS: usize,
    const KERNEL: usize,
    const STRIDE: usize,
    const PATCH: usize,
    const UNITS: usize,
> LayerKind<I, O> for ConvKind<SIDE, CHANNELS, KERNEL, STRIDE, PATCH, UNITS>
{
    type Of<S: Scalar> = Conv<SIDE, CHANNELS, KERNEL, STRIDE, PATCH, UNITS, S>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 5x5 map of 2 channels, 3x3 windows every 2: 4 windows of 18 values, 3 units.
    type Small = Conv<5, 2, 3, 2, 18, 3, f64>;
    const I: usize = 50;
    const O: usize = 12;

    fn layer() -> Small {
        let mut l: Small = bytemuck::Zeroable::zeroed();
        l.kernel.init(Init::He, &mut Rng::new(7));
        for (j, b) in l.kernel.b.iter_mut().enumerate() {
            *b = 0.1 * j as f64 - 0.05;
        }
        l
    }

    /// The same layer as one dense matrix from the whole map: zero outside each window.
    fn expanded(l: &Small) -> Dense<I, O, f64> {
        let w = Small::WINDOWS;
        let mut d = Dense::<I, O, f64>::zeros();
        for p in 0..w.positions() {
            for j in 0..3 {
                d.b[p * 3 + j] = l.kernel.b[j];
                for e in 0..w.patch() {
                    d.w[w.source(p, e)][p * 3 + j] += l.kernel.w[e][j];
                }
            }
        }
        d
    }

    fn input() -> [f64; I] {
        core::array::from_fn(|i| libm::sin(i as f64 * 0.37) + 0.2)
    }

    #[test]
    fn geometry_counts_and_gather_agree_with_the_definition() {
        let w = Small::WINDOWS;
        assert_eq!(
            (w.out_side(), w.positions(), w.patch(), w.inputs()),
            (2, 4, 18, 50)
        );
        let x: [usize; I] = core::array::from_fn(|i| i);
        let mut patch = [0usize; 18];
        for p in 0..4 {
            w.gather(&x, p, &mut patch);
            for (e, &v) in patch.iter().enumerate() {
                assert_eq!(v, w.source(p, e), "window {p}, value {e}");
            }
        }
        // The last window ends on the map's last value.
        assert_eq!(w.source(3, 17), I - 1);
        assert!(!Windows { kernel: 6, ..w }.is_valid());
    }

    #[test]
    fn forward_and_backward_equal_the_expanded_dense_layer() {
        let (l, x) = (layer(), input());
        let d = expanded(&l);
        let (mut y, mut yd) = ([0.0; O], [0.0; O]);
        Linear::forward(&l, &x, &mut y);
        d.forward(&x, &mut yd);
        let dy: [f64; O] = core::array::from_fn(|k| 0.3 - 0.07 * k as f64);
        let (mut dx, mut dxd) = ([0.0; I], [0.0; I]);
        Linear::backward_input(&l, &dy, &mut dx);
        d.backward_input(&dy, &mut dxd);
        let mut worst: f64 = 0.0;
        for (a, b) in y.iter().zip(&yd).chain(dx.iter().zip(&dxd)) {
            worst = worst.max((a - b).abs());
        }
        // The parameter gradient of the shared weights is the sum of the expanded one's over
        // the places each weight appears.
        let mut g: Small = bytemuck::Zeroable::zeroed();
        let mut gd = Dense::<I, O, f64>::zeros();
        Linear::backward_params(&l, &x, &dy, &mut g);
        d.backward_params(&x, &dy, &mut gd);
        let w = Small::WINDOWS;
        for j in 0..3 {
            let bias: f64 = (0..4).map(|p| gd.b[p * 3 + j]).sum();
            worst = worst.max((g.kernel.b[j] - bias).abs());
            for e in 0..18 {
                let weight: f64 = (0..4).map(|p| gd.w[w.source(p, e)][p * 3 + j]).sum();
                worst = worst.max((g.kernel.w[e][j] - weight).abs());
            }
        }
        assert!(worst < 1e-12, "worst difference {worst:e}");
        assert!(
            y.iter().any(|&v| v.abs() > 0.1),
            "a layer that computes something"
        );
    }
}
