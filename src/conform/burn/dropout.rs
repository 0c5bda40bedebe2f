//! burn's `Dropout` as a [`DropoutSubject`]: built by `DropoutConfig::init`, run
//! in training on the autodiff device and in inference through `valid()`, with
//! the real autodiff input gradient as its backward pass.

use super::{array, eval_device, subject_error, tensor, train_device, NAME};
use crate::check::{
    catching, unsupported, BoxedDropout, Capabilities, Capability, DropoutLike, DropoutSubject,
    Result,
};
use crate::phase::Phase;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::Tensor;
use ndarray::ArrayD;

/// burn 0.22's dropout layer (ndarray backend, f32) as a dropout subject, named
/// `burn 0.22`.
///
/// burn refuses rates outside `[0, 1)` by panicking in `DropoutConfig::init`;
/// the panic is returned as [`Error::Subject`](crate::check::Error::Subject)
/// (`panicked: ...`), so rate 1 and invalid rates are convention findings. It
/// has no per-layer seed, so it does not offer
/// [`Capability::SeedAtBuild`](crate::check::Capability::SeedAtBuild) (the rows
/// needing it are not applicable, the others build unseeded), and `reseed`
/// seeds burn's backend stream. No mask access,
/// no counters; the mask shows through the backward pass.
///
/// ```
/// use nncheck::check::DropoutSubject;
/// use nncheck::conform::burn::BurnDropout;
/// use nncheck::Phase;
/// let mut layer = BurnDropout.build(0.5, None).unwrap();
/// let x = ndarray::ArrayD::<f32>::ones(vec![4, 8]);
/// assert_eq!(layer.run(x.clone(), Phase::Eval).unwrap(), x);
/// assert!(BurnDropout.build(1.0, None).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BurnDropout;

impl DropoutSubject for BurnDropout {
    fn name(&self) -> String {
        NAME.into()
    }

    fn version(&self) -> Option<String> {
        Some(super::VERSION.into())
    }

    /// The input gradient by burn's autograd, and reseeding (of burn's one
    /// process-wide stream); no seed at build, noise shape, mask or counters.
    fn capabilities(&self) -> Capabilities {
        Capabilities::of(&[Capability::Backward, Capability::Reseed])
    }

    fn build(&self, rate: f64, seed: Option<u64>) -> Result<BoxedDropout> {
        // The rate first: a rate burn refuses is refused whether or not a seed
        // was asked for.
        let layer = catching(NAME, || Ok(DropoutConfig::new(rate).init()))?;
        if seed.is_some() {
            return unsupported(Capability::SeedAtBuild);
        }
        Ok(Box::new(BurnDropoutLayer { layer, last: None }))
    }
}

/// A built burn dropout and the graph of its last train call.
struct BurnDropoutLayer {
    layer: Dropout,
    /// The last train call's input leaf and output, flattened, and the shape
    /// they had.
    last: Option<(Tensor<1>, Tensor<1>, Vec<usize>)>,
}

/// Runs `layer` on `x` (flattened) reshaped to `shape`, as burn runs a layer on
/// a tensor of that rank, and flattens the output again. Dropout is elementwise
/// and both reshapes are exact in value and gradient.
fn forward_shaped(layer: &Dropout, x: Tensor<1>, shape: &[usize]) -> Result<Tensor<1>> {
    fn at<const D: usize>(layer: &Dropout, x: Tensor<1>, shape: &[usize]) -> Tensor<1> {
        let mut dims = [0usize; D];
        dims.copy_from_slice(shape);
        let n = x.dims()[0];
        layer.forward(x.reshape(dims)).reshape([n])
    }
    Ok(match shape.len() {
        1 => at::<1>(layer, x, shape),
        2 => at::<2>(layer, x, shape),
        3 => at::<3>(layer, x, shape),
        4 => at::<4>(layer, x, shape),
        5 => at::<5>(layer, x, shape),
        6 => at::<6>(layer, x, shape),
        _ => {
            return Err(crate::Error::ShapeMismatch {
                context: format!("{NAME} Dropout input"),
                expected: "rank 1 to 6".into(),
                got: shape.to_vec(),
            }
            .into())
        }
    })
}

/// `x` flattened into a rank-1 array, values in logical order.
fn flat(x: &ArrayD<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(vec![x.len()], x.iter().copied().collect())
        .expect("as many values as the length")
}

/// A rank-1 output read back into `shape`.
fn shaped(y: Tensor<1>, shape: &[usize]) -> Result<ArrayD<f32>> {
    array(y)?
        .into_shape_with_order(shape.to_vec())
        .map_err(subject_error)
}

impl DropoutLike<f32> for BurnDropoutLayer {
    fn rate(&self) -> f64 {
        self.layer.prob
    }

    fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
        let shape = x.shape().to_vec();
        catching(NAME, || match phase {
            Phase::Train => {
                // A leaf that requires its gradient, so the backward pass can
                // read the input gradient of this very call.
                let leaf = tensor::<1>(&flat(&x), &train_device())?.require_grad();
                let y = forward_shaped(&self.layer, leaf.clone(), &shape)?;
                let out = shaped(y.clone(), &shape)?;
                self.last = Some((leaf, y, shape.clone()));
                Ok(out)
            }
            Phase::Eval => {
                let x = tensor::<1>(&flat(&x), &eval_device())?;
                shaped(forward_shaped(&self.layer.valid(), x, &shape)?, &shape)
            }
        })
    }

    fn run_backward(&mut self, dy: ArrayD<f32>) -> Result<ArrayD<f32>> {
        let Some((leaf, y, shape)) = self.last.take() else {
            return Err(crate::Error::NoForwardCache {
                layer: format!("{NAME} Dropout"),
            }
            .into());
        };
        if dy.shape() != shape.as_slice() {
            return Err(crate::Error::ShapeMismatch {
                context: format!("{NAME} Dropout backward"),
                expected: format!("the last train call's shape {shape:?}"),
                got: dy.shape().to_vec(),
            }
            .into());
        }
        catching(NAME, || {
            let dy = tensor::<1>(&flat(&dy), &train_device())?;
            let grads = (y * dy).sum().backward();
            let dx = leaf
                .grad(&grads)
                .ok_or_else(|| subject_error("no gradient for the input of the last train call"))?;
            shaped(dx, &shape)
        })
    }

    fn reseed(&mut self, seed: u64) -> Result<()> {
        catching(NAME, || {
            train_device().seed(seed);
            Ok(())
        })
    }
}
