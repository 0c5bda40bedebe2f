//! `SpatialDropout` (Keras' SpatialDropout1D/2D/3D): dropout of whole channels
//! (SPEC §2b).
//!
//! Invariant served: it *is* nncheck's [`Dropout`] with the noise shape that
//! shares one mask cell over the spatial axes (`[batch, 1, .., 1, channels]`
//! channels-last, `[batch, channels, 1, .., 1]` channels-first), so every
//! guarantee of SPEC §2 carries over unchanged: a channel is all `+0.0` or all
//! exactly `x * scale`, drop counts are binomial over (sample, channel) cells,
//! eval is the identity, and the mask depends only on (seed, call, cell).

use crate::error::{Error, Result};
use crate::layer::{leaf_layer_common, noise_layer_common, Layer};
use crate::layers::dropout::Dropout;
use crate::phase::ForwardCtx;
use crate::rng::SeedSequence;
use crate::tensor::Element;
use ndarray::ArrayD;

/// Where the channel axis is (Keras `data_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub enum DataFormat {
    /// `[batch, spatial.., channels]` (Keras' default, `channels_last`).
    #[default]
    ChannelsLast,
    /// `[batch, channels, spatial..]` (`channels_first`).
    ChannelsFirst,
}

/// Dropout of whole channels of 1-, 2- or 3-D feature maps.
///
/// `rank` is the number of spatial axes (1, 2 or 3: SpatialDropout1D, 2D, 3D), so
/// samples have `rank + 1` axes. Keras' SpatialDropout1D is channels-last only;
/// here every rank takes either [`DataFormat`]. The rate follows [`Dropout`]:
/// `[0, 1]`, with 1 dropping everything.
///
/// ```
/// use nncheck::{DataFormat, Layer, Phase, SpatialDropout, phase::ForwardCtx};
/// use ndarray::ArrayD;
/// let mut sd = SpatialDropout::<f32>::new(2, 0.5, DataFormat::ChannelsLast).unwrap().with_seed(1);
/// let x = ArrayD::<f32>::ones(vec![2, 3, 3, 8]);
/// let y = sd.forward(x.clone(), ForwardCtx::top(Phase::Train)).unwrap();
/// for b in 0..2 {
///     for c in 0..8 {
///         let v = y[[b, 0, 0, c]];
///         assert!(v == 0.0 || v == 2.0);
///         assert!((0..3).all(|h| (0..3).all(|w| y[[b, h, w, c]] == v)));
///     }
/// }
/// assert!(SpatialDropout::<f32>::new(4, 0.5, DataFormat::ChannelsLast).is_err());
/// ```
pub struct SpatialDropout<F: Element> {
    name: String,
    trainable: bool,
    rank: usize,
    data_format: DataFormat,
    inner: Dropout<F>,
}

impl<F: Element> std::fmt::Debug for SpatialDropout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpatialDropout")
            .field("name", &self.name)
            .field("trainable", &self.trainable)
            .field("rank", &self.rank)
            .field("data_format", &self.data_format)
            .field("inner", &self.inner)
            .finish()
    }
}

/// The Keras noise shape of a spatial dropout (batch included).
///
/// ```
/// use nncheck::layers::spatial_dropout::{spatial_noise_shape, DataFormat};
/// assert_eq!(spatial_noise_shape(2, DataFormat::ChannelsLast), vec![None, Some(1), Some(1), None]);
/// assert_eq!(spatial_noise_shape(1, DataFormat::ChannelsFirst), vec![None, None, Some(1)]);
/// ```
pub fn spatial_noise_shape(rank: usize, data_format: DataFormat) -> Vec<Option<usize>> {
    let spatial = std::iter::repeat_n(Some(1), rank);
    match data_format {
        DataFormat::ChannelsLast => std::iter::once(None)
            .chain(spatial)
            .chain(std::iter::once(None))
            .collect(),
        DataFormat::ChannelsFirst => [None, None].into_iter().chain(spatial).collect(),
    }
}

impl<F: Element> SpatialDropout<F> {
    /// A spatial dropout over `rank` spatial axes (1, 2 or 3) dropping channels
    /// with probability `rate` in `[0, 1]`. A bad rank is
    /// [`Error::InvalidHyperParameter`], a bad rate [`Error::InvalidRate`].
    pub fn new(rank: usize, rate: f64, data_format: DataFormat) -> Result<Self> {
        if !(1..=3).contains(&rank) {
            return Err(Error::InvalidHyperParameter {
                name: "SpatialDropout rank",
                value: rank as f64,
                expected: "1, 2 or 3",
            });
        }
        let inner = Dropout::new(rate)?.with_noise_shape(spatial_noise_shape(rank, data_format));
        Ok(SpatialDropout {
            name: format!("spatial_dropout{rank}d"),
            trainable: true,
            rank,
            data_format,
            inner,
        })
    }

    /// Keras' `SpatialDropout1D(rate)` (channels-last).
    pub fn new_1d(rate: f64) -> Result<Self> {
        Self::new(1, rate, DataFormat::ChannelsLast)
    }

    /// Keras' `SpatialDropout2D(rate, data_format)`.
    pub fn new_2d(rate: f64, data_format: DataFormat) -> Result<Self> {
        Self::new(2, rate, data_format)
    }

    /// Keras' `SpatialDropout3D(rate, data_format)`.
    pub fn new_3d(rate: f64, data_format: DataFormat) -> Result<Self> {
        Self::new(3, rate, data_format)
    }

    /// Names the layer.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Pins the mask seed; a model's seed no longer replaces it at build.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.inner = self.inner.with_seed(seed);
        self
    }

    /// The number of spatial axes.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Where the channel axis is.
    pub fn data_format(&self) -> DataFormat {
        self.data_format
    }

    /// The rate.
    pub fn rate(&self) -> f64 {
        self.inner.rate()
    }

    /// The dropout underneath (its scale, seed and counters).
    pub fn dropout(&self) -> &Dropout<F> {
        &self.inner
    }

    /// The channel axis of a batch (batch axis included).
    pub fn channel_axis(&self) -> usize {
        match self.data_format {
            DataFormat::ChannelsLast => self.rank + 1,
            DataFormat::ChannelsFirst => 1,
        }
    }
}

impl<F: Element> Layer<F> for SpatialDropout<F> {
    leaf_layer_common!();

    fn build(&mut self, input_shape: &[usize], seeds: &mut SeedSequence) -> Result<Vec<usize>> {
        if input_shape.len() != self.rank + 1 {
            return Err(crate::tensor::shape_mismatch(
                &format!("SpatialDropout{}D `{}` input", self.rank, self.name),
                format!(
                    "samples of {} axes ({} spatial and one channel axis)",
                    self.rank + 1,
                    self.rank
                ),
                input_shape,
            ));
        }
        self.inner.build(input_shape, seeds)
    }

    fn forward(&mut self, x: ArrayD<F>, ctx: ForwardCtx) -> Result<ArrayD<F>> {
        self.inner.forward(x, ctx)
    }

    fn backward(&mut self, dy: ArrayD<F>, need_input_grad: bool) -> Result<Option<ArrayD<F>>> {
        self.inner.backward(dy, need_input_grad)
    }

    noise_layer_common!(inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::Phase;

    #[test]
    fn the_rate_rank_and_channel_axis_are_the_ones_given() {
        assert_eq!(SpatialDropout::<f32>::new_1d(0.4).unwrap().rate(), 0.4);
        // Batch first, then the spatial axes around the channel axis.
        for (layer, rank, channel_axis) in [
            (SpatialDropout::<f32>::new_1d(0.4).unwrap(), 1, 2),
            (
                SpatialDropout::new_2d(0.4, DataFormat::ChannelsLast).unwrap(),
                2,
                3,
            ),
            (
                SpatialDropout::new_3d(0.4, DataFormat::ChannelsLast).unwrap(),
                3,
                4,
            ),
            (
                SpatialDropout::new_2d(0.4, DataFormat::ChannelsFirst).unwrap(),
                2,
                1,
            ),
        ] {
            assert_eq!((layer.rank(), layer.channel_axis()), (rank, channel_axis));
        }
    }

    #[test]
    fn channels_first_shares_cells_over_spatial_axes_and_backward_matches() {
        let mut sd = SpatialDropout::<f32>::new_3d(0.5, DataFormat::ChannelsFirst)
            .unwrap()
            .with_seed(6);
        let x = ArrayD::from_elem(vec![2, 6, 2, 2, 3], 1.5f32);
        let y = sd.forward(x, ForwardCtx::top(Phase::Train)).unwrap();
        let dx = sd
            .backward(ArrayD::ones(vec![2, 6, 2, 2, 3]), true)
            .unwrap()
            .unwrap();
        for b in 0..2 {
            for c in 0..6 {
                let v = y[[b, c, 0, 0, 0]];
                let g = dx[[b, c, 0, 0, 0]];
                assert!(v == 0.0 && g == 0.0 || v == 3.0 && g == 2.0);
                for i in ndarray::indices((2, 2, 3)) {
                    assert_eq!(y[[b, c, i.0, i.1, i.2]], v);
                }
            }
        }
        assert_eq!(sd.stochastic().unwrap().noise_stats().draws, 12);
    }

    #[test]
    fn wrong_rank_is_a_typed_error() {
        let mut sd = SpatialDropout::<f32>::new_2d(0.5, DataFormat::ChannelsLast).unwrap();
        let mut seeds = SeedSequence::new(Some(1));
        assert!(matches!(
            sd.build(&[4, 4], &mut seeds),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            SpatialDropout::<f32>::new_1d(1.5),
            Err(Error::InvalidRate { .. })
        ));
    }

    #[test]
    fn the_data_format_is_the_one_given() {
        for format in [DataFormat::ChannelsLast, DataFormat::ChannelsFirst] {
            let layer = SpatialDropout::<f32>::new_2d(0.4, format).unwrap();
            assert_eq!(layer.data_format(), format);
        }
        let one_d = SpatialDropout::<f32>::new_1d(0.4).unwrap();
        assert_eq!(one_d.data_format(), DataFormat::ChannelsLast);
    }
}
