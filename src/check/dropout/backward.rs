//! The backward pass uses the forward's mask and scale (SPEC §2): on strictly
//! positive `x` and `dy`, the input gradient is `dy` scaled by one listed recipe
//! where the forward kept the unit, and zero where it dropped it.

use super::harness::with_layer;
use super::scale_recipe::{RecipeAudit, ScaleRecipe};
use crate::check::capability::Capability;
use crate::check::inputs::positive_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{DropoutLike, DropoutSubject};
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;
use ndarray::Zip;

/// The backward pass, against the forward's mask.
pub const CHECK: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "backward_uses_forward_mask",
        "the input gradient is dy scaled by the forward's recipe where kept and zero where dropped",
    )],
    needs: &[Capability::Backward],
    judged: Judged::Exact,
    run,
};

fn run(subject: &dyn DropoutSubject, case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let x = positive_input(&case.shape, case.seed ^ 1);
    let dy = positive_input(&case.shape, case.seed ^ 3);
    with_layer(
        subject,
        CHECK.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| vec![check_backward_uses_forward_mask(&label, &mut l, &x, &dy)],
    )
}

/// Backward uses the forward's mask and scale: on strictly positive `x` and
/// `dy`, `dx` is `dy` scaled by one listed recipe ([`ScaleRecipe`]) bit for bit
/// where the forward kept the unit, the same recipe throughout, and zero (either
/// sign: the sign of a dropped gradient is a convention) where it dropped it.
pub fn check_backward_uses_forward_mask<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    dy: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "backward_uses_forward_mask";
    let rate = layer.rate();
    let result = layer
        .run(x.clone(), Phase::Train)
        .and_then(|y| Ok((y, layer.run_backward(dy.clone())?)));
    if let Err(e @ crate::check::Error::Unsupported { .. }) = &result {
        return CheckReport::from_error(CHECK, subject, e);
    }
    let (observed, pass) = match result {
        Ok((y, dx)) if dx.shape() == y.shape() && y.shape() == x.shape() => {
            // The forward's recipe, from its own survivors, and the backward's,
            // from the gradients: one recipe must fit both.
            let mut forward = RecipeAudit::default();
            Zip::from(x).and(&y).for_each(|&x, &y| {
                if !y.is_zero() {
                    forward.observe(x, y, rate);
                }
            });
            let mut backward = RecipeAudit::default();
            let wrong = Zip::from(&y)
                .and(&dx)
                .and(dy)
                .fold(0usize, |acc, &y, &dx, &g| {
                    let right = if y.is_zero() {
                        dx.is_zero()
                    } else {
                        backward.observe(g, dx, rate)
                    };
                    acc + usize::from(!right)
                });
            let shared = ScaleRecipe::ALL
                .iter()
                .enumerate()
                .any(|(i, _)| forward.misfits[i] == 0 && backward.misfits[i] == 0);
            let mut observed = format!("{wrong} of {} input gradients off", y.len());
            if let Some(note) = backward.note() {
                observed.push_str(&format!("; kept gradients: {note}"));
            }
            if forward.holds() && backward.holds() && !shared {
                observed.push_str(&format!(
                    "; the forward follows {}, the backward another",
                    forward.summary()
                ));
            }
            (
                observed,
                wrong == 0 && backward.holds() && (shared || !forward.holds()),
            )
        }
        Ok((_, dx)) => (format!("gradient of shape {:?}", dx.shape()), false),
        Err(e) => (format!("error: {e}"), false),
    };
    CheckReport::exact(CHECK, subject, observed, "0 off".into(), pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gradient whose shape is not the output's cannot be matched to the mask:
    /// the check fails it and names its shape instead of panicking in the zip.
    #[test]
    fn a_gradient_of_another_shape_than_the_output_fails_without_panicking() {
        let flattened = crate::check::subjects::observed::Observed::with_forward(
            Box::new(crate::Dropout::<f32>::new(0.5).unwrap().with_seed(1)),
            Box::new(|inner, x, ctx| {
                inner.forward(x, ctx).map(|y| {
                    let n = y.len();
                    y.into_shape_with_order(vec![n]).unwrap()
                })
            }),
        );
        let mut twin = crate::check::LayerAsDropout::new(Box::new(flattened), 0.5);
        let x = ArrayD::from_elem(vec![4, 6], 1.0_f32);
        let r = check_backward_uses_forward_mask("flat", &mut twin, &x, &x);
        assert!(
            !r.pass && r.observed == "gradient of shape [4, 6]",
            "{}",
            r.line()
        );
    }

    /// A backward that passes `dy` through unscaled is off at every kept unit,
    /// and the report counts them.
    #[test]
    fn the_backward_report_counts_each_gradient_off() {
        struct Unscaled(crate::Dropout<f32>, Option<ArrayD<f32>>);
        impl DropoutLike<f32> for Unscaled {
            fn rate(&self) -> f64 {
                0.5
            }
            fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> crate::check::Result<ArrayD<f32>> {
                let y = DropoutLike::run(&mut self.0, x, phase)?;
                self.1 = Some(y.clone());
                Ok(y)
            }
            fn run_backward(&mut self, dy: ArrayD<f32>) -> crate::check::Result<ArrayD<f32>> {
                let y = self.1.as_ref().expect("a forward first");
                Ok(ndarray::Zip::from(y)
                    .and(&dy)
                    .map_collect(|&y, &g| if y == 0.0 { 0.0 } else { g }))
            }
        }
        let mut twin = Unscaled(crate::Dropout::new(0.5).unwrap().with_seed(1), None);
        let x = ArrayD::from_elem(vec![4, 6], 1.0_f32);
        let r = check_backward_uses_forward_mask("unscaled", &mut twin, &x, &x);
        let kept = twin.1.unwrap().iter().filter(|&&v| v != 0.0).count();
        assert!(kept > 0);
        assert!(
            !r.pass
                && r.observed.starts_with(&format!(
                    "{kept} of 24 input gradients off; kept gradients: {kept} fit no listed recipe"
                )),
            "{}",
            r.line()
        );
    }
}
