//! What the checks run on: a network of dense layers and (clipped) ReLUs, convertible to any
//! precision, with its loss and its backprop there. 784-128-10 and each compact architecture
//! are one.

use digits_core::conv::Windows;
use digits_core::deep::{Ceilings, Deep};
use digits_core::downsample::area_average_into;
use digits_core::layer::{LayerKind, Linear};
use digits_core::params::convert;
use digits_core::pixels::normalize;
use digits_core::{MnistMlp, Params, Scalar};

/// A network under check, its weights in `f32`.
pub trait Subject {
    /// The network in precision `S`; also the shape of its gradient. Its tensors are each
    /// layer's weights then bias, first to last.
    type Net<S: Scalar>: Params<S>;
    /// One sample's input in precision `S`.
    type Input<S: Scalar>: AsRef<[S]>;

    /// The network converted to precision `S`.
    fn network<S: Scalar>(&self) -> Box<Self::Net<S>>;
    /// One image as the network's input in precision `S`.
    fn input<S: Scalar>(&self, pixels: &[u8; 784]) -> Self::Input<S>;
    /// The mean loss of a batch.
    fn loss<S: Scalar>(&self, net: &Self::Net<S>, xs: &[Self::Input<S>], labels: &[u8]) -> S;
    /// Overwrites `grad` with backprop's gradient of the mean loss of a batch.
    fn backprop<S: Scalar>(
        &self,
        net: &Self::Net<S>,
        xs: &[Self::Input<S>],
        labels: &[u8],
        grad: &mut Self::Net<S>,
    );
    /// The clipping ceiling of each hidden layer (infinite: ReLU).
    fn ceilings(&self) -> Vec<f64>;
    /// The windows of each layer that is a convolution (none: every layer dense).
    fn windows(&self) -> Vec<Option<Windows>> {
        Vec::new()
    }
}

/// The 784-128-10 network.
pub struct MlpSubject<'a>(pub &'a MnistMlp<f32>);

impl Subject for MlpSubject<'_> {
    type Net<S: Scalar> = MnistMlp<S>;
    type Input<S: Scalar> = [S; 784];

    fn network<S: Scalar>(&self) -> Box<MnistMlp<S>> {
        let mut m: Box<MnistMlp<S>> = bytemuck::zeroed_box();
        convert(self.0, &mut *m);
        m
    }

    fn input<S: Scalar>(&self, pixels: &[u8; 784]) -> [S; 784] {
        let mut x = [S::ZERO; 784];
        normalize(pixels, &mut x);
        x
    }

    fn loss<S: Scalar>(&self, net: &MnistMlp<S>, xs: &[[S; 784]], labels: &[u8]) -> S {
        net.loss(xs, labels)
    }

    fn backprop<S: Scalar>(
        &self,
        net: &MnistMlp<S>,
        xs: &[[S; 784]],
        labels: &[u8],
        grad: &mut MnistMlp<S>,
    ) {
        net.backprop(xs, labels, grad);
    }

    fn ceilings(&self) -> Vec<f64> {
        vec![f64::INFINITY]
    }
}

/// A compact network (three hidden layers of clipped ReLU) on the downsampled image.
pub struct DeepSubject<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
> {
    /// The weights.
    pub net: Box<Deep<IN, H1, H2, H3, OUT, f32, K1, K2>>,
    /// The clipping ceilings.
    pub ceilings: Ceilings<f32>,
    /// Side of the downsampled input.
    pub side: usize,
}

impl<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
> Subject for DeepSubject<IN, H1, H2, H3, OUT, K1, K2>
{
    type Net<S: Scalar> = Deep<IN, H1, H2, H3, OUT, S, K1, K2>;
    type Input<S: Scalar> = [S; IN];

    fn network<S: Scalar>(&self) -> Box<Self::Net<S>> {
        let mut m: Box<Self::Net<S>> = bytemuck::zeroed_box();
        convert(&*self.net, &mut *m);
        m
    }

    fn input<S: Scalar>(&self, pixels: &[u8; 784]) -> [S; IN] {
        let mut codes = [0u8; IN];
        area_average_into(pixels, self.side, &mut codes);
        let mut x = [S::ZERO; IN];
        normalize(&codes, &mut x);
        x
    }

    fn loss<S: Scalar>(&self, net: &Self::Net<S>, xs: &[[S; IN]], labels: &[u8]) -> S {
        net.loss(xs, labels, &self.ceilings_in())
    }

    fn backprop<S: Scalar>(
        &self,
        net: &Self::Net<S>,
        xs: &[[S; IN]],
        labels: &[u8],
        grad: &mut Self::Net<S>,
    ) {
        net.backprop(xs, labels, &self.ceilings_in(), grad);
    }

    fn ceilings(&self) -> Vec<f64> {
        self.ceilings.0.iter().map(|&c| f64::from(c)).collect()
    }

    fn windows(&self) -> Vec<Option<Windows>> {
        vec![
            <K1::Of<f32> as Linear<IN, H1, f32>>::WINDOWS,
            <K2::Of<f32> as Linear<H1, H2, f32>>::WINDOWS,
            None,
            None,
        ]
    }
}

impl<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const H3: usize,
    const OUT: usize,
    K1: LayerKind<IN, H1>,
    K2: LayerKind<H1, H2>,
> DeepSubject<IN, H1, H2, H3, OUT, K1, K2>
{
    fn ceilings_in<S: Scalar>(&self) -> Ceilings<S> {
        Ceilings(self.ceilings.0.map(|c| S::from_f64(f64::from(c))))
    }
}
