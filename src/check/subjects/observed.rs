//! A layer wrapped so that a check sees every forward call it makes: the phase,
//! the input and the output. To the model the wrapper is its inner layer (same
//! name, path, weights and random state), so a check can judge what a layer did
//! inside a model, not what it claims (SPEC §2, §2b: the report judges outputs).
//! The same wrapper with a forward of its own ([`Observed::with_forward`]) makes a
//! deliberately broken twin of any layer, for showing that a check can fail.

use crate::error::Result;
use crate::layer::{Layer, LayerVisitor, LayerVisitorMut, WeightVisitor, WeightVisitorMut};
use crate::phase::{ForwardCtx, Phase};
use crate::rng::SeedSequence;
use crate::stochastic::Stochastic;
use crate::tensor::Element;
use ndarray::ArrayD;

/// What an [`Observed`] layer shows of each forward call: phase, input, output.
pub type ForwardObserver<F> = Box<dyn FnMut(Phase, &ArrayD<F>, &ArrayD<F>) + Send>;

/// A forward in place of the inner layer's: it gets the inner layer, the input
/// and the context, and returns the output.
pub type ForwardHook<F> =
    Box<dyn FnMut(&mut dyn Layer<F>, ArrayD<F>, ForwardCtx) -> Result<ArrayD<F>> + Send>;

/// `inner`, with `observer` called after each of its forward calls.
///
/// ```
/// use nncheck::check::subjects::observed::Observed;
/// use nncheck::{Dropout, Layer, Phase, phase::ForwardCtx};
/// use ndarray::ArrayD;
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(0usize));
/// let count = Arc::clone(&seen);
/// let mut d = Observed::new(
///     Box::new(Dropout::<f32>::new(0.5).unwrap().with_seed(1)),
///     Box::new(move |_, x, _| *count.lock().unwrap() += x.len()),
/// );
/// d.forward(ArrayD::ones(vec![2, 3]), ForwardCtx::top(Phase::Train)).unwrap();
/// assert_eq!(*seen.lock().unwrap(), 6);
/// ```
pub struct Observed<F: Element> {
    inner: Box<dyn Layer<F>>,
    forward: ForwardHook<F>,
}

impl<F: Element> std::fmt::Debug for Observed<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("inner", &self.inner.name())
            .finish_non_exhaustive()
    }
}

impl<F: Element> Observed<F> {
    /// Wraps `inner`; `observer` sees each forward call's phase, input and output.
    pub fn new(inner: Box<dyn Layer<F>>, mut observer: ForwardObserver<F>) -> Self {
        let forward = move |layer: &mut dyn Layer<F>, x: ArrayD<F>, ctx: ForwardCtx| {
            // The inner layer may consume its input (eval dropout returns it), so
            // the observer gets a copy taken before the call.
            let input = x.clone();
            let y = layer.forward(x, ctx)?;
            observer(ctx.phase, &input, &y);
            Ok(y)
        };
        Self::with_forward(inner, Box::new(forward))
    }

    /// Wraps `inner` with `forward` run in place of its own: a broken twin.
    ///
    /// ```
    /// use nncheck::check::subjects::observed::Observed;
    /// use nncheck::{Dropout, Layer, Phase, phase::ForwardCtx};
    /// use ndarray::ArrayD;
    /// // A dropout that keeps dropping in Eval.
    /// let mut twin = Observed::with_forward(
    ///     Box::new(Dropout::<f32>::new(0.5).unwrap().with_seed(1)),
    ///     Box::new(|layer, x, ctx| layer.forward(x, ForwardCtx { phase: Phase::Train, ..ctx })),
    /// );
    /// let y = twin.forward(ArrayD::ones(vec![64]), ForwardCtx::top(Phase::Eval)).unwrap();
    /// assert!(y.iter().any(|&v| v == 0.0));
    /// ```
    pub fn with_forward(inner: Box<dyn Layer<F>>, forward: ForwardHook<F>) -> Self {
        Observed { inner, forward }
    }
}

impl<F: Element> Layer<F> for Observed<F> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn set_name(&mut self, name: String) {
        self.inner.set_name(name);
    }
    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        self.inner.build(input_shape, seeds)
    }
    fn forward(&mut self, x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        (self.forward)(self.inner.as_mut(), x, ctx)
    }
    fn backward(&mut self, dy: ArrayD<F>, need: bool) -> Result<Option<ArrayD<F>>> {
        self.inner.backward(dy, need)
    }
    fn trainable(&self) -> bool {
        self.inner.trainable()
    }
    fn set_trainable(&mut self, trainable: bool) {
        self.inner.set_trainable(trainable);
    }
    fn visit_weights(&self, prefix: &str, path: bool, f: &mut WeightVisitor<'_, F>) {
        self.inner.visit_weights(prefix, path, f);
    }
    fn visit_weights_mut(&mut self, prefix: &str, path: bool, f: &mut WeightVisitorMut<'_, F>) {
        self.inner.visit_weights_mut(prefix, path, f);
    }
    fn visit_layers(&self, prefix: &str, f: &mut LayerVisitor<'_, F>) {
        self.inner.visit_layers(prefix, f);
    }
    fn visit_layers_mut(&mut self, prefix: &str, f: &mut LayerVisitorMut<'_, F>) {
        self.inner.visit_layers_mut(prefix, f);
    }
    fn commit_state(&mut self) {
        self.inner.commit_state();
    }
    fn pending_state_finite(&self) -> bool {
        self.inner.pending_state_finite()
    }
    fn stochastic(&self) -> Option<&dyn Stochastic> {
        self.inner.stochastic()
    }
    fn stochastic_mut(&mut self) -> Option<&mut dyn Stochastic> {
        self.inner.stochastic_mut()
    }
    fn has_trainable_params(&self, path_trainable: bool) -> bool {
        self.inner.has_trainable_params(path_trainable)
    }
}

/// A dropout twin (claimed rate 0.5) whose every output is `+0.0` in `shape`,
/// whatever the input: every lane and cell agrees with itself, so only a
/// check's shape guard can give it away.
#[cfg(test)]
pub(crate) fn zeros_of_shape(shape: Vec<usize>) -> super::LayerAsDropout<f32> {
    let inner = Box::new(crate::Dropout::<f32>::new(0.5).expect("valid rate"));
    let twin = Observed::with_forward(
        inner,
        Box::new(move |_, _, _| Ok(ArrayD::zeros(shape.clone()))),
    );
    super::LayerAsDropout::new(Box::new(twin), 0.5)
}

/// A twin whose every forward returns `output`, claiming `rate`: a layer a
/// check's test hands a chosen output.
#[cfg(test)]
pub(crate) fn fixed_output(output: ArrayD<f32>, rate: f64) -> super::LayerAsDropout<f32> {
    let inner = Box::new(crate::Dropout::<f32>::new(rate).expect("valid rate"));
    let twin = Observed::with_forward(inner, Box::new(move |_, _, _| Ok(output.clone())));
    super::LayerAsDropout::new(Box::new(twin), rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sequential::Sequential;
    use crate::Dropout;

    /// The weights of a model holding only `inner`, observed, before and after
    /// one SGD step on `(x, y)`.
    fn weights_around_one_step(
        inner: Box<dyn Layer<f32>>,
        x: ArrayD<f32>,
        y: ArrayD<f32>,
    ) -> (Vec<ArrayD<f32>>, Vec<ArrayD<f32>>) {
        let mut model = Sequential::<f32>::new("m")
            .add(Observed::new(inner, Box::new(|_, _, _| {})))
            .build(&x.shape()[1..], Some(1))
            .unwrap();
        model
            .compile(crate::optim::Sgd::new(0.1), crate::Loss::MeanSquaredError)
            .unwrap();
        let before = model.get_weights();
        model.train_on_batch(&x, &y).unwrap();
        (before, model.get_weights())
    }

    /// The wrapper is invisible to training: a wrapped Dense is trained as
    /// the Dense itself would be.
    #[test]
    fn an_observed_dense_still_trains() {
        let (before, after) = weights_around_one_step(
            Box::new(crate::Dense::new(2)),
            ArrayD::ones(vec![4, 3]),
            ArrayD::zeros(vec![4, 2]),
        );
        assert_eq!(before.len(), 2);
        for (b, a) in before.iter().zip(&after) {
            assert_ne!(b, a, "a wrapped weight did not move");
        }
    }

    #[test]
    fn an_observed_layer_takes_the_name_its_model_gives_it() {
        let observed = || {
            Observed::new(
                Box::new(Dropout::<f32>::new(0.5).unwrap()),
                Box::new(|_, _, _| {}),
            )
        };
        let model = Sequential::new("m")
            .add(observed())
            .add(observed())
            .build(&[3], Some(1))
            .unwrap();
        assert_eq!(model.layer_paths(), ["m", "m/dropout", "m/dropout_1"]);
    }

    /// The wrapper shows its inner layer's flags and commits its state: a
    /// wrapped BatchNorm's moving statistics move in training, a frozen wrapper
    /// says so, and a wrapped dropout has nothing to train.
    #[test]
    fn an_observed_layer_shows_the_inner_layers_flags_and_state() {
        let (before, after) = weights_around_one_step(
            Box::new(crate::BatchNormalization::new()),
            ArrayD::from_shape_fn(vec![4, 2], |i| (i[0] * 2 + i[1]) as f32),
            ArrayD::ones(vec![4, 2]),
        );
        assert_eq!(before.len(), 4, "gamma, beta, moving mean, moving variance");
        for (b, a) in before.iter().zip(&after) {
            assert_ne!(b, a, "a wrapped BatchNorm weight or statistic did not move");
        }

        let mut dropout = Observed::new(
            Box::new(Dropout::<f32>::new(0.5).unwrap()),
            Box::new(|_, _, _| {}),
        );
        assert!(!dropout.has_trainable_params(true));
        assert!(dropout.trainable());
        dropout.set_trainable(false);
        assert!(!dropout.trainable());
    }

    /// A model reseeds its noise layers through `stochastic_mut`: through the
    /// wrapper it reaches the inner stream, so one seed draws one mask again.
    #[test]
    fn reseeding_through_the_wrapper_reaches_the_inner_stream() {
        let mut wrapped = Observed::new(
            Box::new(Dropout::<f32>::new(0.5).unwrap().with_seed(1)),
            Box::new(|_, _, _| {}),
        );
        let x = ArrayD::from_elem(vec![64], 1.0f32);
        let mut draw = |seed: u64| {
            wrapped
                .stochastic_mut()
                .expect("the inner dropout's stream")
                .reseed(seed);
            wrapped
                .forward(x.clone(), ForwardCtx::top(Phase::Train))
                .unwrap()
        };
        let (first, again, other) = (draw(9), draw(9), draw(10));
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    /// The wrapper answers for its layer whether the state a step would commit
    /// is finite: a BatchNorm that saw an infinity in `Train` has moving
    /// statistics no step may keep, one that saw finite values has not.
    #[test]
    fn the_observer_reports_its_layers_pending_state() {
        use crate::layers::BatchNormalization;
        use crate::phase::ForwardCtx;
        use crate::rng::SeedSequence;
        for (value, finite) in [(1.0f32, true), (f32::INFINITY, false)] {
            let mut observed = Observed::new(
                Box::new(BatchNormalization::<f32>::new()),
                Box::new(|_, _, _| {}),
            );
            observed
                .build(&[2], &mut SeedSequence::new(Some(1)))
                .unwrap();
            let x = ArrayD::from_shape_vec(vec![2, 2], vec![value, 0.5, -1.0, 2.0]).unwrap();
            observed.forward(x, ForwardCtx::top(Phase::Train)).unwrap();
            assert_eq!(observed.pending_state_finite(), finite, "input {value}");
        }
    }
}
