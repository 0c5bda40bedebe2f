//! Eval is the identity (SPEC §2): in `Eval`, and at rate 0 in `Train`, the
//! output is the input bit for bit (NaN payloads, `-0.0`, infinities,
//! subnormals); and the related exact verdicts of a model's `predict` and of
//! rate 1.

use super::harness::guarded;
use super::harness::with_layer;
use crate::check::inputs::special_input;
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{build_layer, BoxedDropout};
use crate::check::subjects::{DropoutLike, DropoutSubject};
use crate::phase::Phase;
use crate::tensor::bits_equal;
use crate::tensor::Element;
use ndarray::ArrayD;

/// `Eval` returns the input bit for bit, on special values.
pub const CHECK: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::invariant(
        "eval_is_identity",
        "in Eval, and at rate 0 in Train, the output is the input bit for bit (NaN payloads, -0.0, infinities, subnormals)",
    )],
    needs: &[],
    judged: Judged::Exact,
    run,
};

fn run(subject: &dyn DropoutSubject, case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let name = subject.name();
    let label = case.label(&name);
    let special = special_input(&case.shape, case.seed ^ 2);
    let mut reports = with_layer(
        subject,
        CHECK.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| {
            vec![check_eval_identity(
                &format!("{label} special values"),
                &mut l,
                &special,
            )]
        },
    );
    // Rate 0 in `Train` is the identity too (SPEC §2).
    let rate_zero = format!("{name} Dropout(0) {:?} train", case.shape);
    reports.extend(guarded(
        &name,
        CHECK.id(),
        &rate_zero,
        || build_layer(subject, 0.0, case.seed),
        |l| {
            vec![check_eval_identity(
                &rate_zero,
                &mut RunInTrain(l),
                &special,
            )]
        },
    ));
    reports
}

/// A built layer whose every call runs in `Train`, seen as an eval-identity
/// subject (rate 0 in `Train` is the identity, SPEC §2).
struct RunInTrain(BoxedDropout);

impl DropoutLike<f32> for RunInTrain {
    fn rate(&self) -> f64 {
        self.0.rate()
    }
    fn run(&mut self, x: ArrayD<f32>, _: Phase) -> crate::check::Result<ArrayD<f32>> {
        self.0.run(x, Phase::Train)
    }
}

/// Every dropout output of a model's `predict` equals its input bit for bit
/// (SPEC §2, §4: `Eval` is the identity), judged from what an audit of the layer's
/// calls counted: `seen` elements, `differing` of them with other bits. A run that
/// saw nothing fails, since it proved nothing.
pub fn check_predict_dropout_identity(subject: &str, seen: u64, differing: u64) -> CheckReport {
    CheckReport::exact(
        "predict_dropout_is_identity",
        subject,
        format!("{differing} of {seen} outputs differ from their input in bits"),
        "0 differ".into(),
        seen > 0 && differing == 0,
    )
}

/// In `Eval`, the output is the input bit for bit.
pub fn check_eval_identity<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    let (observed, pass) = match layer.run(x.clone(), Phase::Eval) {
        Ok(y) => {
            let differing = if y.shape() == x.shape() {
                y.iter()
                    .zip(x.iter())
                    .filter(|(a, b)| a.to_bits_u64() != b.to_bits_u64())
                    .count()
            } else {
                x.len()
            };
            (
                format!("{differing} of {} elements differ in bits", x.len()),
                bits_equal(&y, x),
            )
        }
        Err(e) => (format!("error: {e}"), false),
    };
    CheckReport::exact(
        "eval_is_identity",
        subject,
        observed,
        "0 differ".into(),
        pass,
    )
}

/// At rate 1, one train call on `x` makes every output `+0.0`, whatever the
/// input: NaN, infinities and `-0.0` included (SPEC §2, the `Train`, rate = 1
/// row). `layer` claims rate 1.
pub fn check_rate_one_all_positive_zero<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    const CHECK: &str = "rate_one_all_positive_zero";
    let zero = F::zero().to_bits_u64();
    match layer.run(x.clone(), Phase::Train) {
        Ok(y) => {
            let not_zero = y.iter().filter(|v| v.to_bits_u64() != zero).count();
            let mut observed = format!("{not_zero} outputs not +0.0");
            if y.shape() != x.shape() {
                observed.push_str(&format!("; output shape {:?}", y.shape()));
            }
            CheckReport::exact(
                CHECK,
                subject,
                observed,
                "0".into(),
                not_zero == 0 && y.shape() == x.shape(),
            )
        }
        Err(e) => CheckReport::errored(CHECK, subject, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::subjects::observed::zeros_of_shape;

    #[test]
    fn predict_identity_needs_outputs_seen_and_none_differing() {
        assert!(check_predict_dropout_identity("d", 10, 0).pass);
        assert!(!check_predict_dropout_identity("d", 10, 1).pass);
        assert!(!check_predict_dropout_identity("d", 0, 0).pass);
    }

    /// At rate 1 the report names an output of the wrong shape, and only then.
    #[test]
    fn the_rate_one_report_names_a_wrong_output_shape_only() {
        let x = ArrayD::from_elem(vec![4, 8], 1.0f32);
        let mut real = crate::Dropout::<f32>::new(1.0).unwrap().with_seed(1);
        let r = check_rate_one_all_positive_zero("real", &mut real, &x);
        assert!(r.pass && r.observed == "0 outputs not +0.0", "{}", r.line());
        let mut short = zeros_of_shape(vec![2, 3]);
        let r = check_rate_one_all_positive_zero("short", &mut short, &x);
        assert!(
            !r.pass && r.observed == "0 outputs not +0.0; output shape [2, 3]",
            "{}",
            r.line()
        );
    }
}
