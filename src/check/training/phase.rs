//! Checks of SPEC §4, phase resolution, read off the dropout counters: `fit`
//! runs every unpinned layer in `Train` (frozen or not), `predict` and
//! `evaluate` in `Eval`, and a phase pinned on a node reaches that node's
//! subtree only.

use super::snapshot::ModelSnapshot;
use crate::check::report::CheckReport;
use crate::model::Model;
use crate::tensor::Element;

/// Units seen and units dropped, summed over every dropout whose path starts with
/// `prefix`.
pub(crate) fn units_seen_and_dropped_under<F: Element>(
    model: &Model<F>,
    prefix: &str,
) -> (u64, u64) {
    model
        .dropout_stats()
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .fold((0, 0), |(s, d), (_, st)| {
            (s + st.units_seen, d + st.units_dropped)
        })
}

/// After `train` runs the model in `Train`, dropout under `pinned_eval` (a node
/// pinned to `Eval`) dropped nothing, while dropout under `sibling` (not pinned)
/// dropped units: the pin did not leak.
pub fn check_pin_stays_in_subtree<F: Element>(
    subject: &str,
    model: &mut Model<F>,
    train: &mut dyn FnMut(&mut Model<F>) -> crate::error::Result<()>,
    pinned_eval: &str,
    sibling: &str,
) -> CheckReport {
    let (_, pinned_before) = units_seen_and_dropped_under(model, pinned_eval);
    let (seen_before, sibling_before) = units_seen_and_dropped_under(model, sibling);
    if let Err(e) = train(model) {
        return CheckReport::errored("pin_stays_in_subtree", subject, e);
    }
    let pinned = units_seen_and_dropped_under(model, pinned_eval).1 - pinned_before;
    let (seen, sibling_after) = units_seen_and_dropped_under(model, sibling);
    let sibling_dropped = sibling_after - sibling_before;
    CheckReport::exact(
        "pin_stays_in_subtree",
        subject,
        format!("pinned {pinned_eval} dropped {pinned}; sibling {sibling} dropped {sibling_dropped} of {}", seen - seen_before),
        "0; > 0".into(),
        pinned == 0 && sibling_dropped > 0,
    )
}

/// The dropout in a frozen model was active during `fit`: freezing changes
/// what trains, not the phase (SPEC §4 and the observability clause of §2).
/// `before` and `after` are snapshots of that model around the `fit`.
pub fn check_frozen_model_dropout_active_in_fit<F: Element>(
    subject: &str,
    before: &ModelSnapshot<F>,
    after: &ModelSnapshot<F>,
) -> CheckReport {
    let (seen_before, dropped_before) = before.units_seen_and_dropped();
    let (seen_after, dropped_after) = after.units_seen_and_dropped();
    let dropped = dropped_after.wrapping_sub(dropped_before);
    CheckReport::exact(
        "frozen_model_dropout_counted_in_fit",
        subject,
        format!(
            "{dropped} of {} units dropped",
            seen_after.wrapping_sub(seen_before)
        ),
        "> 0 dropped".into(),
        dropped_after > dropped_before,
    )
}

/// No dropout ran in `Train` during `predict` and `evaluate` (SPEC §4: with no
/// pin and no enclosing phase, the phase is `Eval`): between `before` and
/// `after`, snapshots around those calls, no unit was seen or dropped by a
/// train-phase call.
pub fn check_dropout_inactive_in_predict_evaluate<F: Element>(
    subject: &str,
    before: &ModelSnapshot<F>,
    after: &ModelSnapshot<F>,
) -> CheckReport {
    let before = before.units_seen_and_dropped();
    let after = after.units_seen_and_dropped();
    // Signed: a counter that went backwards is as much a failure as one that grew.
    let delta = |a: u64, b: u64| i128::from(a) - i128::from(b);
    let (seen, dropped) = (delta(after.0, before.0), delta(after.1, before.1));
    CheckReport::exact(
        "dropout_inactive_in_predict_evaluate",
        subject,
        format!("{dropped} units dropped and {seen} seen by train-phase dropout in predict and evaluate"),
        "0; 0".into(),
        seen == 0 && dropped == 0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Loss::MeanSquaredError;
    use crate::stochastic::NoiseStats;
    use crate::Dropout;
    use ndarray::ArrayD;

    fn counted(units_seen: u64, units_dropped: u64) -> ModelSnapshot<f32> {
        ModelSnapshot {
            weights: Vec::new(),
            optimizer: Vec::new(),
            counters: vec![(
                "m/dropout".into(),
                NoiseStats {
                    units_seen,
                    units_dropped,
                    ..NoiseStats::default()
                },
            )],
        }
    }

    /// A train-phase call that happened to drop nothing (a low rate, a small
    /// batch) still ran in the wrong phase: units seen alone fail the check.
    #[test]
    fn units_seen_without_a_drop_still_mean_train_phase_ran() {
        let before = counted(10, 3);
        for (after, pass) in [
            (counted(10, 3), true),
            (counted(20, 3), false),
            (counted(10, 4), false),
            (counted(5, 3), false),
        ] {
            let r = check_dropout_inactive_in_predict_evaluate("m", &before, &after);
            assert_eq!(r.pass, pass, "{}", r.line());
        }
    }

    /// `pinned`: `base` pinned to `Eval` beside an unpinned 0.5 dropout named
    /// `sibling`, both on a 6-wide input, concatenated into a Dense head;
    /// compiled with SGD and MSE.
    fn pinned_model(base: impl crate::layer::Layer<f32> + 'static) -> Model<f32> {
        use crate::layers::Dense;
        use crate::model::graph::Functional;
        use crate::phase::Phase;
        let mut g = Functional::<f32>::new("pinned", Some(5));
        let input = g.input(&[6]).unwrap();
        let base = g.apply_pinned(base, input, Phase::Eval).unwrap();
        let sibling = g
            .apply(Dropout::new(0.5).unwrap().named("sibling"), input)
            .unwrap();
        let joined = g.concat(&[base, sibling]).unwrap();
        let out = g.apply(Dense::new(1), joined).unwrap();
        let mut model = g.build(out).unwrap();
        model.compile(sgd(), MeanSquaredError).unwrap();
        model
    }

    fn sgd() -> crate::optim::Sgd {
        crate::optim::Sgd::new(0.01)
    }

    /// One epoch of one unshuffled batch of 8.
    fn one_batch() -> crate::fit::FitConfig {
        crate::fit::FitConfig {
            epochs: 1,
            batch_size: 8,
            shuffle: false,
            seed: Some(1),
        }
    }

    /// Inputs `[8, 6]` of ones and targets `[8, 1]` of 0.5.
    fn ones_and_halves() -> (ArrayD<f32>, ArrayD<f32>) {
        (
            ArrayD::from_elem(vec![8, 6], 1.0),
            ArrayD::from_elem(vec![8, 1], 0.5),
        )
    }

    /// The report counts the sibling's units over the call: one epoch of one
    /// batch of 8 samples through a 6-wide dropout is 48 units seen.
    #[test]
    fn the_pin_report_counts_the_siblings_units_seen() {
        let mut model = pinned_model(Dropout::new(0.5).unwrap().named("base"));
        let (x, y) = ones_and_halves();
        let mut train = |m: &mut Model<f32>| m.fit(&x, &y, &one_batch()).map(|_| ());
        let r = check_pin_stays_in_subtree(
            "pin",
            &mut model,
            &mut train,
            "pinned/base",
            "pinned/sibling",
        );
        assert!(r.pass && r.observed.ends_with(" of 48"), "{}", r.line());
    }

    /// The pinned subtree is judged on what it dropped during the call only: a
    /// nested model that dropped units before it was pinned (it was fitted on
    /// its own first) still passes when the pinned call drops none.
    #[test]
    fn the_pinned_subtree_is_judged_on_the_call_alone() {
        use crate::layers::Dense;
        use crate::model::sequential::Sequential;
        let (x, y) = ones_and_halves();
        let mut inner = Sequential::new("inner")
            .add(Dense::new(6))
            .add(Dropout::new(0.5).unwrap().named("drop"))
            .build(&[6], Some(2))
            .unwrap();
        inner.compile(sgd(), MeanSquaredError).unwrap();
        inner.fit(&x, &x, &one_batch()).unwrap();
        let mut model = pinned_model(inner);
        assert!(units_seen_and_dropped_under(&model, "pinned/inner").1 > 0);
        let mut train = |m: &mut Model<f32>| m.fit(&x, &y, &one_batch()).map(|_| ());
        let r = check_pin_stays_in_subtree(
            "pin",
            &mut model,
            &mut train,
            "pinned/inner",
            "pinned/sibling",
        );
        assert!(
            r.pass && r.observed.starts_with("pinned pinned/inner dropped 0;"),
            "{}",
            r.line()
        );
    }

    /// The sibling is judged on what it dropped during the call only: a call
    /// that trained nothing fails, however much the sibling dropped before.
    #[test]
    fn the_sibling_is_judged_on_the_call_alone() {
        let mut model = pinned_model(Dropout::new(0.5).unwrap().named("base"));
        let (x, y) = ones_and_halves();
        model.fit(&x, &y, &one_batch()).unwrap();
        assert!(units_seen_and_dropped_under(&model, "pinned/sibling").1 > 0);
        let mut predict_only = |m: &mut Model<f32>| m.predict(&x).map(|_| ());
        let r = check_pin_stays_in_subtree(
            "pin",
            &mut model,
            &mut predict_only,
            "pinned/base",
            "pinned/sibling",
        );
        assert!(
            !r.pass && r.observed.ends_with("dropped 0 of 0"),
            "{}",
            r.line()
        );
    }
}
