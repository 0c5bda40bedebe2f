//! Noise-shape cells shared (SPEC §2, Keras `noise_shape`): under a noise
//! shape with a 1 on an axis, every lane along that axis is dropped or kept as
//! a whole.

use super::harness::guarded;
use crate::check::capability::Capability;
use crate::check::inputs::positive_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{DropoutLike, DropoutSubject};
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;

/// Axis 1 shares one mask cell; batch rows stay independent draws.
pub const CHECK: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "noise_shape_cells_shared",
        "under a noise shape with a 1 on axis 1, every lane along axis 1 is all dropped or all kept",
    )
    .optional()],
    needs: &[Capability::NoiseShape],
    judged: Judged::Exact,
    run,
};

fn run(subject: &dyn DropoutSubject, case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let shape = &case.shape;
    // An axis 1 of length 1 shares nothing, so the check could not fail there.
    if shape.len() < 2 || shape[1] <= 1 {
        return Vec::new();
    }
    let label = case.label(&subject.name());
    let x = positive_input(shape, case.seed ^ 1);
    let mut noise = vec![None; shape.len()];
    noise[1] = Some(1);
    guarded(
        &subject.name(),
        CHECK.id(),
        &label,
        || subject.build_with_noise_shape(case.rate, Some(case.seed), &noise),
        |mut layer| vec![check_noise_shape_cells_shared(&label, &mut layer, &x, 1)],
    )
}

/// Under a noise shape with a 1 on `axis`, one train call on strictly positive `x` drops
/// or keeps each lane along `axis` as a whole: the cells of a lane share one
/// mask draw (SPEC §2, noise shape). `layer` is configured with that noise shape.
pub fn check_noise_shape_cells_shared<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    axis: usize,
) -> CheckReport {
    const CHECK: &str = "noise_shape_cells_shared";
    match layer.run(x.clone(), Phase::Train) {
        Ok(y) if y.shape() == x.shape() && axis < y.ndim() => {
            let disagreeing = y
                .lanes(ndarray::Axis(axis))
                .into_iter()
                .filter(|lane| {
                    let zeros = lane.iter().filter(|v| v.is_zero()).count();
                    zeros != 0 && zeros != lane.len()
                })
                .count();
            CheckReport::exact(
                CHECK,
                subject,
                format!("{disagreeing} lanes along the shared axis disagree"),
                "0".into(),
                disagreeing == 0,
            )
        }
        Ok(y) => CheckReport::exact(
            CHECK,
            subject,
            format!(
                "output shape {:?} for input {:?}, shared axis {axis}",
                y.shape(),
                x.shape()
            ),
            "0".into(),
            false,
        ),
        Err(e) => CheckReport::from_error(CHECK, subject, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::subjects::observed::zeros_of_shape;

    #[test]
    fn the_noise_shape_check_fails_a_wrong_shape_or_axis_without_panicking() {
        let x = ArrayD::from_elem(vec![4, 6], 1.0_f32);
        let transposed =
            check_noise_shape_cells_shared("t", &mut zeros_of_shape(vec![6, 4]), &x, 0);
        assert!(
            !transposed.pass && transposed.observed.contains("output shape [6, 4]"),
            "{}",
            transposed.line()
        );
        let past_the_rank =
            check_noise_shape_cells_shared("a", &mut zeros_of_shape(vec![4, 6]), &x, 2);
        assert!(
            !past_the_rank.pass && past_the_rank.observed.contains("shared axis 2"),
            "{}",
            past_the_rank.line()
        );
        let right = check_noise_shape_cells_shared("r", &mut zeros_of_shape(vec![4, 6]), &x, 1);
        assert!(right.pass, "{}", right.line());
    }
}
