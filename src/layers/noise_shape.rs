//! The noise-shape rule of SPEC §2, shared by dropout and the other noise layers:
//! a noise shape has one entry per axis of the input, each `None` (the input's
//! size), 1 (one mask cell shared across the axis) or the input's size; anything
//! else is a typed error, at build time where the sample shape already rules it
//! out, else at the call.

use crate::error::{Error, Result};

/// The per-call mask-cell shape of an input of `shape` (batch included) under a
/// Keras noise shape, by the rule of SPEC §2: one entry per axis, each `None`
/// (the input's size), 1, or the input's size.
pub(crate) fn resolve_noise_shape(
    noise: Option<&[Option<usize>]>,
    shape: &[usize],
) -> Result<Vec<usize>> {
    let Some(noise) = noise else {
        return Ok(shape.to_vec());
    };
    let resolved: Vec<usize> = noise
        .iter()
        .zip(shape.iter().chain(std::iter::repeat(&0)))
        .map(|(n, &s)| n.unwrap_or(s))
        .collect();
    let fits =
        noise.len() == shape.len() && resolved.iter().zip(shape).all(|(&n, &s)| n == s || n == 1);
    if !fits {
        return Err(Error::InvalidNoiseShape {
            noise_shape: noise.to_vec(),
            input_shape: shape.iter().copied().map(Some).collect(),
        });
    }
    Ok(resolved)
}

/// At build time, when the batch size is not known yet: rejects a noise shape
/// that can fit no batch of samples shaped `sample_shape`.
pub(crate) fn check_noise_shape_at_build(
    noise: Option<&[Option<usize>]>,
    sample_shape: &[usize],
) -> Result<()> {
    let Some(noise) = noise else {
        return Ok(());
    };
    let misfit = noise[1.min(noise.len())..]
        .iter()
        .zip(sample_shape)
        .any(|(n, &s)| n.is_some_and(|n| n != 1 && n != s));
    if noise.len() != sample_shape.len() + 1 || misfit {
        return Err(Error::InvalidNoiseShape {
            noise_shape: noise.to_vec(),
            input_shape: std::iter::once(None)
                .chain(sample_shape.iter().copied().map(Some))
                .collect(),
        });
    }
    Ok(())
}
