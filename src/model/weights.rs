//! Reading and writing a model's weights: all at once (Keras `get_weights` and
//! `set_weights`), or one by its path, and listing them with their kind and
//! effective trainability (SPEC §3: a weight is trainable only when its layer
//! and every model on its path are).

use super::Model;
use crate::error::{Error, Result};
use crate::layer::{join_path, Layer, WeightKind};
use crate::tensor::{shape_mismatch, Element};
use ndarray::ArrayD;

/// One weight as [`Model::weights`] and its filters list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightInfo {
    /// `model/layer/name`.
    pub path: String,
    /// The weight's shape.
    pub shape: Vec<usize>,
    /// Learned by the optimizer, or state the layer updates itself.
    pub kind: WeightKind,
    /// Effectively trainable: its layer and every model on its path are.
    pub trainable: bool,
}

impl<F: Element> Model<F> {
    /// Every weight, in build order (Keras `get_weights`).
    pub fn get_weights(&self) -> Vec<ArrayD<F>> {
        let mut out = Vec::new();
        self.visit_weights("", true, &mut |_, w, _| out.push(w.value.clone()));
        out
    }

    /// Replaces every weight, in `get_weights` order; shapes must match exactly.
    /// On error nothing is changed.
    pub fn set_weights(&mut self, weights: Vec<ArrayD<F>>) -> Result<()> {
        let current = self.get_weights();
        if current.len() != weights.len() {
            return Err(Error::WeightCount {
                model: self.name.clone(),
                expected: current.len(),
                got: weights.len(),
            });
        }
        for (c, w) in current.iter().zip(&weights) {
            if c.shape() != w.shape() {
                return Err(shape_mismatch(
                    &format!("set_weights on `{}`", self.name),
                    format!("{:?}", c.shape()),
                    w.shape(),
                ));
            }
        }
        let mut it = weights.into_iter();
        self.visit_weights_mut("", true, &mut |_, w, _| {
            w.value = it.next().expect("count checked");
        });
        Ok(())
    }

    fn list_weights(&self, keep: impl Fn(WeightKind, bool) -> bool) -> Vec<WeightInfo> {
        let mut out = Vec::new();
        self.visit_weights("", true, &mut |path, w, eff| {
            if keep(w.kind, eff) {
                out.push(WeightInfo {
                    path: join_path(path, w.name),
                    shape: w.value.shape().to_vec(),
                    kind: w.kind,
                    trainable: eff,
                });
            }
        });
        out
    }

    /// Every weight in build order, with its path, shape, kind and effective
    /// trainability (its layer and every model on its path trainable).
    ///
    /// ```
    /// use nncheck::{BatchNormalization, Dense, Sequential, WeightKind};
    /// let mut m = Sequential::<f32>::new("m").add(Dense::new(2)).add(BatchNormalization::new())
    ///     .build(&[3], Some(1)).unwrap();
    /// m.set_trainable_at("m/dense", false).unwrap();
    /// let w = m.weights();
    /// assert_eq!((w[0].path.as_str(), w[0].kind, w[0].trainable), ("m/dense/kernel", WeightKind::Param, false));
    /// assert!(w.iter().any(|w| w.path == "m/batch_normalization/moving_mean" && w.kind == WeightKind::State));
    /// ```
    pub fn weights(&self) -> Vec<WeightInfo> {
        self.list_weights(|_, _| true)
    }

    /// The value of the weight at `path` (`model/layer/name`, as [`Model::weights`]
    /// lists it), or [`Error::UnknownPath`].
    ///
    /// ```
    /// use nncheck::{Dense, Sequential};
    /// let m = Sequential::<f32>::new("model_A").add(Dense::new(4)).build(&[3], Some(1)).unwrap();
    /// assert_eq!(m.weight("model_A/dense/kernel").unwrap().shape(), &[3, 4]);
    /// assert!(m.weight("model_A/dense/gamma").is_err());
    /// ```
    pub fn weight(&self, path: &str) -> Result<ArrayD<F>> {
        let mut found = None;
        self.visit_weights("", true, &mut |layer, w, _| {
            if found.is_none() && join_path(layer, w.name) == path {
                found = Some(w.value.clone());
            }
        });
        found.ok_or_else(|| self.unknown_weight(path))
    }

    /// Replaces the weight at `path` with `value` of the same shape. An unknown
    /// path or another shape is an error and changes nothing.
    ///
    /// ```
    /// use nncheck::{Dense, Sequential};
    /// use ndarray::ArrayD;
    /// let mut m = Sequential::<f32>::new("m").add(Dense::new(1)).build(&[2], Some(1)).unwrap();
    /// m.set_weight("m/dense/bias", ArrayD::from_elem(vec![1], 0.5)).unwrap();
    /// assert_eq!(m.weight("m/dense/bias").unwrap()[[0]], 0.5);
    /// assert!(m.set_weight("m/dense/bias", ArrayD::zeros(vec![2])).is_err());
    /// ```
    pub fn set_weight(&mut self, path: &str, value: ArrayD<F>) -> Result<()> {
        let current = self.weight(path)?;
        if current.shape() != value.shape() {
            return Err(shape_mismatch(
                &format!("set_weight `{path}`"),
                format!("{:?}", current.shape()),
                value.shape(),
            ));
        }
        let mut value = Some(value);
        self.visit_weights_mut("", true, &mut |layer, w, _| {
            if join_path(layer, w.name) == path {
                if let Some(v) = value.take() {
                    w.value = v;
                }
            }
        });
        Ok(())
    }

    fn unknown_weight(&self, path: &str) -> Error {
        Error::UnknownPath {
            model: self.name().to_string(),
            what: "weight",
            path: path.to_string(),
        }
    }

    /// Weights the optimizer may change now (Keras `trainable_weights`).
    pub fn trainable_weights(&self) -> Vec<WeightInfo> {
        self.list_weights(|kind, eff| kind == WeightKind::Param && eff)
    }

    /// Frozen parameters and internal state (Keras `non_trainable_weights`).
    pub fn non_trainable_weights(&self) -> Vec<WeightInfo> {
        self.list_weights(|kind, eff| !(kind == WeightKind::Param && eff))
    }

    /// The number of scalars in `trainable_weights` and in `non_trainable_weights`.
    pub fn count_params(&self) -> (usize, usize) {
        let count = |v: Vec<WeightInfo>| v.iter().map(|w| w.shape.iter().product::<usize>()).sum();
        (
            count(self.trainable_weights()),
            count(self.non_trainable_weights()),
        )
    }
}
