//! Concatenation along the last axis, the join of a functional model's branches.
//!
//! Not a [`crate::Layer`] (it has several inputs): it is part of the functional
//! model, which calls these functions at its concat nodes. Backward splits the gradient back
//! into the branches in the same order.

use crate::error::Result;
use crate::tensor::{shape_mismatch, Element};
use ndarray::{concatenate, ArrayD, ArrayViewD, Axis};

/// The per-sample output shape of concatenating inputs of `shapes` on the last axis.
pub fn concat_shape(shapes: &[Vec<usize>]) -> Result<Vec<usize>> {
    let Some(first) = shapes.first() else {
        return Err(shape_mismatch("Concatenate", "at least one input", &[]));
    };
    if first.is_empty() {
        return Err(shape_mismatch(
            "Concatenate input",
            "at least one axis",
            first,
        ));
    }
    let lead = &first[..first.len() - 1];
    let mut width = 0usize;
    for shape in shapes {
        if shape.len() != first.len() || &shape[..shape.len() - 1] != lead {
            return Err(shape_mismatch(
                "Concatenate input",
                format!("{lead:?} + [any] (all but the last axis equal)"),
                shape,
            ));
        }
        width = width
            .checked_add(shape[shape.len() - 1])
            .ok_or_else(|| shape_mismatch("Concatenate", "a width that fits in usize", shape))?;
    }
    let mut out = lead.to_vec();
    out.push(width);
    crate::tensor::checked_len(&out)?;
    Ok(out)
}

/// Concatenates batches on the last axis.
pub fn concat_forward<F: Element>(inputs: &[ArrayViewD<'_, F>]) -> Result<ArrayD<F>> {
    let axis = Axis(inputs.first().map_or(0, |x| x.ndim().saturating_sub(1)));
    concatenate(axis, inputs).map_err(|_| {
        shape_mismatch(
            "Concatenate batch",
            "inputs equal on every axis but the last",
            inputs.first().map_or(&[][..], |x| x.shape()),
        )
    })
}

/// Splits the output gradient into one gradient per input, of the given widths.
pub fn concat_backward<F: Element>(dy: &ArrayD<F>, widths: &[usize]) -> Vec<ArrayD<F>> {
    let axis = Axis(dy.ndim() - 1);
    let mut start = 0;
    widths
        .iter()
        .map(|&w| {
            let part = dy.slice_axis(axis, (start..start + w).into()).to_owned();
            start += w;
            part
        })
        .collect()
}
