//! Where dropout implementations legitimately differ, measured and reported
//! apart from correctness: the sign of a dropped negative, what a dropped NaN,
//! infinity or `-0.0` becomes, whether rate 1 is accepted, and what happens to
//! an invalid rate. SPEC §2 makes one choice for each (`+0.0` for every drop,
//! rate 1 accepted, invalid rates refused); a subject that chooses otherwise gets
//! a convention record with the observed figure, never a failure, unless the
//! choice breaks an invariant (a kept unit not scaled exactly, rate 1 keeping a
//! unit).
//!
//! Dropped NaN and `-0.0` inputs cannot be told from kept ones by the output
//! alone (`NaN * 0` and `NaN * scale` are both NaN; `-0.0 * scale` is `-0.0`),
//! so the special-value audit reads the mask: from the subject's last mask where
//! it shows one, else from a backward pass of ones (the gradient is the scale
//! where kept and zero where dropped), else it audits only what the output
//! shows and says so.

use super::harness::with_layer;
use super::scale_recipe::RecipeAudit;
use crate::check::capability::{Capabilities, Capability};
use crate::check::error::catching;
use crate::check::inputs::{positive_input, special_input};
use crate::check::registry::{DropoutCheck, Judged, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{build_layer, DropoutLike, DropoutSubject};
use crate::phase::Phase;
use ndarray::ArrayD;

/// The sign of a dropped negative.
pub const NEGATIVE_SIGN: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::convention(
        "dropped_negative_sign",
        "a dropped negative is +0.0 (SPEC's choice; x * mask gives -0.0)",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: run_negative_sign,
};

/// Special values kept as their recipe gives them, and what dropped ones become.
pub const SPECIAL_VALUES: DropoutCheck = DropoutCheck {
    records: &[
        RecordSpec::invariant(
            "special_values_kept_scaled",
            "kept special values (NaN, infinities, -0.0, subnormals, extremes) are x / (1 - p) by one recipe; NaN stays NaN, a subnormal is scaled, not flushed",
        ),
        RecordSpec::convention(
            "dropped_special_values",
            "a dropped NaN, infinity or -0.0 becomes +0.0 (SPEC's choice)",
        ),
    ],
    needs: &[],
    judged: Judged::Exact,
    run: run_special_values,
};

/// Rate 1.
pub const RATE_ONE: DropoutCheck = DropoutCheck {
    records: &[
        RecordSpec::convention(
            "rate_one",
            "rate 1 is accepted and every dropped output is +0.0 (SPEC's choice)",
        ),
        RecordSpec::invariant(
            "rate_one_drops_everything",
            "where rate 1 is accepted, no unit is kept",
        )
        .optional(),
    ],
    needs: &[],
    judged: Judged::Exact,
    run: run_rate_one,
};

/// Invalid rates.
pub const INVALID_RATES: DropoutCheck = DropoutCheck {
    records: &[RecordSpec::convention(
        "invalid_rate_refused",
        "a rate of -0.1, 1.5 or NaN is refused with an error (SPEC's choice)",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: run_invalid_rates,
};

fn run_negative_sign(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    _: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    with_layer(
        subject,
        NEGATIVE_SIGN.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| {
            vec![check_dropped_negative_sign(
                &label,
                l.as_mut(),
                case.seed ^ 6,
            )]
        },
    )
}

fn run_special_values(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    _: &Settings,
) -> Vec<CheckReport> {
    let label = case.label(&subject.name());
    let caps = subject.capabilities();
    with_layer(
        subject,
        SPECIAL_VALUES.id(),
        &label,
        case.rate,
        case.seed,
        |mut l| {
            check_special_values(
                &format!("{label} special values"),
                l.as_mut(),
                &caps,
                &[64, 64],
                case.seed ^ 2,
            )
        },
    )
}

fn run_rate_one(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    _: &Settings,
) -> Vec<CheckReport> {
    check_rate_one(subject, &case.shape, case.seed ^ 7)
}

fn run_invalid_rates(
    subject: &dyn DropoutSubject,
    case: &DropoutCase,
    _: &Settings,
) -> Vec<CheckReport> {
    vec![check_invalid_rates_refused(
        subject,
        &case.shape,
        case.seed ^ 8,
    )]
}

/// Dropped negatives are `+0.0` (SPEC's choice); `x * mask` implementations give
/// `-0.0`. Judged on 10^4 strictly negative finite inputs, where any zero
/// output is a drop.
pub fn check_dropped_negative_sign(
    label: &str,
    layer: &mut dyn DropoutLike<f32>,
    seed: u64,
) -> CheckReport {
    const CHECK: &str = "dropped_negative_sign";
    let x = positive_input(&[10_000], seed).mapv(|v| -v);
    match layer.run(x, Phase::Train) {
        Ok(y) => {
            let dropped = y.iter().filter(|v| **v == 0.0).count();
            let negative = y
                .iter()
                .filter(|v| **v == 0.0 && v.is_sign_negative())
                .count();
            CheckReport::convention(
                CHECK,
                label,
                format!("{negative} of {dropped} dropped negatives are -0.0"),
                "every dropped unit is +0.0".into(),
                negative == 0,
            )
        }
        Err(e) => CheckReport::from_error(CHECK, label, &e),
    }
}

/// The keep mask of the last train call in logical order, and where it came
/// from: the subject's own mask, else the input gradient of a backward pass of
/// ones, else a same-seed call on positive input (after `reseed(seed)`), as far
/// as `caps` says the layer can; `reseeded` says the call ran right after
/// `reseed(seed)`.
fn mask_of_last_call(
    layer: &mut dyn DropoutLike<f32>,
    caps: &Capabilities,
    shape: &[usize],
    seed: u64,
    reseeded: bool,
) -> (Option<Vec<bool>>, &'static str) {
    if caps.has(Capability::Mask) {
        if let Ok(mask) = layer.last_mask() {
            if mask.shape() == shape {
                return (Some(mask.iter().copied().collect()), "mask");
            }
        }
    }
    if caps.has(Capability::Backward) {
        if let Ok(dx) = layer.run_backward(ArrayD::ones(shape.to_vec())) {
            if dx.shape() == shape {
                let mask = dx.iter().map(|g| *g != 0.0).collect();
                return (Some(mask), "mask read from the backward pass");
            }
        }
    }
    // The same seed on positive input draws the same mask, where seeding exists.
    if reseeded && layer.reseed(seed).is_ok() {
        if let Ok(y) = layer.run(positive_input(shape, seed), Phase::Train) {
            if y.shape() == shape {
                let mask = y.iter().map(|v| *v != 0.0).collect();
                return (
                    Some(mask),
                    "mask read from a same-seed call on positive input",
                );
            }
        }
    }
    (None, "output only: no mask, backward pass or seeding")
}

/// The class of a special input, as the kept-unit tally names it.
fn input_class(v: f32) -> &'static str {
    if v.is_subnormal() {
        "subnormal"
    } else if v.is_finite() && v.abs() == f32::MAX {
        "extreme"
    } else {
        class(v)
    }
}

fn class(v: f32) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v == f32::INFINITY {
        "+inf"
    } else if v == f32::NEG_INFINITY {
        "-inf"
    } else if v == 0.0 && v.is_sign_negative() {
        "-0.0"
    } else if v == 0.0 {
        "+0.0"
    } else {
        "finite"
    }
}

/// One train call on special values (NaN with a payload, both infinities,
/// `-0.0`, subnormals, extremes), judged through the mask: two records.
///
/// - `special_values_kept_scaled` (invariant): every kept unit is `x * scale`
///   bit for bit, NaN staying NaN; where no mask can be read, the units whose
///   output proves them kept (finite nonzero output) are judged.
/// - `dropped_special_values` (convention): what dropped NaN, infinities and
///   `-0.0` became; SPEC's choice is `+0.0` for each. Without any way to read
///   the mask only the drops the output shows (a finite nonzero input that
///   became zero, an infinity that became NaN or zero) are seen, and the
///   record says so.
pub fn check_special_values(
    label: &str,
    layer: &mut dyn DropoutLike<f32>,
    caps: &Capabilities,
    shape: &[usize],
    seed: u64,
) -> Vec<CheckReport> {
    let x = special_input(shape, seed);
    let reseeded = caps.has(Capability::Reseed) && layer.reseed(seed).is_ok();
    let y = match layer.run(x.clone(), Phase::Train) {
        Ok(y) if y.shape() == x.shape() => y,
        Ok(y) => {
            let e = format!("output shape {:?} for input {:?}", y.shape(), x.shape());
            return vec![
                CheckReport::errored("special_values_kept_scaled", label, &e),
                CheckReport::errored("dropped_special_values", label, &e),
            ];
        }
        Err(e) => {
            return vec![
                CheckReport::from_error("special_values_kept_scaled", label, &e),
                CheckReport::from_error("dropped_special_values", label, &e),
            ]
        }
    };
    let rate = layer.rate();
    let (mask, source) = mask_of_last_call(layer, caps, shape, seed, reseeded);
    let mut recipes = RecipeAudit::default();
    let mut kept_wrong = 0usize;
    // Input class -> kept units of it judged, so a report shows that every
    // class (subnormals above all) was audited.
    let mut kept_classes: std::collections::BTreeMap<&str, usize> = Default::default();
    // (input class, output class) -> count, for the drops seen.
    let mut drops: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    for (i, (&xi, &yi)) in x.iter().zip(y.iter()).enumerate() {
        let values = RecipeAudit::values(xi, rate);
        let kept = match &mask {
            Some(m) => m[i],
            // Without a mask, only a finite nonzero output proves a keep, and
            // only a zero or NaN output from a non-NaN input proves a drop.
            None => {
                if yi.is_finite() && yi != 0.0 {
                    true
                } else if !xi.is_nan() && class(yi) != class(values[0]) {
                    false
                } else {
                    continue;
                }
            }
        };
        if kept {
            *kept_classes.entry(input_class(xi)).or_default() += 1;
            kept_wrong += usize::from(!recipes.observe_values(xi, yi, &values));
        } else if !xi.is_finite() || xi == 0.0 {
            *drops.entry((class(xi), class(yi))).or_default() += 1;
        } else if yi.to_bits() != 0 {
            *drops.entry(("finite", class(yi))).or_default() += 1;
        }
    }
    let kept_judged: usize = kept_classes.values().sum();
    let mut kept_observed = format!(
        "{kept_wrong} of {kept_judged} kept units off their recipe ({source}); kept: {}",
        kept_classes
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(note) = recipes.note() {
        kept_observed.push_str(&format!("; {note}"));
    }
    let dropped_seen: Vec<String> = drops
        .iter()
        .filter(|((from, to), _)| *to != "+0.0" || *from != "finite")
        .map(|((from, to), n)| format!("{from} -> {to} x{n}"))
        .collect();
    let off_spec = drops.iter().any(|((_, to), _)| *to != "+0.0");
    vec![
        CheckReport::exact(
            "special_values_kept_scaled",
            label,
            kept_observed,
            "0; NaN stays NaN, the rest bit for bit by one listed recipe".into(),
            kept_wrong == 0 && kept_judged > 0 && recipes.holds(),
        ),
        CheckReport::convention(
            "dropped_special_values",
            label,
            format!(
                "dropped: {} ({source})",
                if dropped_seen.is_empty() {
                    "every one +0.0".to_string()
                } else {
                    dropped_seen.join(", ")
                }
            ),
            "every dropped NaN, infinity and -0.0 becomes +0.0".into(),
            !off_spec,
        ),
    ]
}

/// Rate 1: SPEC accepts it and makes every output `+0.0`, NaN and infinities
/// included. Always a `rate_one` convention record (accepted or refused, and
/// how many outputs were not `+0.0`); where the rate was accepted, also the
/// invariant `rate_one_drops_everything`, which fails if a unit was kept. A
/// subject that cannot seed is built unseeded ([`build_layer`]), so its lack of
/// seeding never reads as a refusal of the rate.
pub fn check_rate_one(
    subject: &dyn DropoutSubject,
    shape: &[usize],
    seed: u64,
) -> Vec<CheckReport> {
    const CHECK: &str = "rate_one";
    let label = format!("{} rate 1", subject.name());
    let x = special_input(shape, seed);
    let run = catching(&subject.name(), || {
        build_layer(subject, 1.0, seed)?.run(x.clone(), Phase::Train)
    });
    match run {
        Ok(y) => {
            // A nonzero number is a kept unit, the invariant's business; the
            // convention judges only what the drops became (a NaN cannot be told).
            let kept = y.iter().filter(|v| **v != 0.0 && !v.is_nan()).count();
            let not_positive_zero = y
                .iter()
                .filter(|v| (**v == 0.0 || v.is_nan()) && v.to_bits() != 0)
                .count();
            let mut drops_everything = format!("{kept} of {} outputs kept at rate 1", y.len());
            if y.shape() != x.shape() {
                drops_everything.push_str(&format!("; output shape {:?}", y.shape()));
            }
            vec![
                CheckReport::exact(
                    "rate_one_drops_everything",
                    &label,
                    drops_everything,
                    "0 kept".into(),
                    kept == 0 && y.shape() == x.shape(),
                ),
                CheckReport::convention(
                    CHECK,
                    &label,
                    format!(
                        "accepted; {not_positive_zero} of {} dropped outputs not +0.0",
                        y.len() - kept
                    ),
                    "accepted, every output +0.0".into(),
                    not_positive_zero == 0,
                ),
            ]
        }
        Err(e) => vec![CheckReport::convention(
            CHECK,
            &label,
            format!("refused: {e}"),
            "accepted, every output +0.0".into(),
            false,
        )],
    }
}

/// Invalid rates (negative, above 1, NaN): SPEC refuses each with a typed error.
/// A subject that accepts one gets a convention record saying which, and
/// whether its eval call with that rate is still the identity. A subject that
/// cannot seed is built unseeded ([`build_layer`]), so its lack of seeding never
/// reads as a refusal.
pub fn check_invalid_rates_refused(
    subject: &dyn DropoutSubject,
    shape: &[usize],
    seed: u64,
) -> CheckReport {
    const CHECK: &str = "invalid_rate_refused";
    let x = positive_input(shape, seed);
    let mut accepted = Vec::new();
    for rate in [-0.1, 1.5, f64::NAN] {
        let eval = catching(&subject.name(), || {
            build_layer(subject, rate, seed)?.run(x.clone(), Phase::Eval)
        });
        if let Ok(y) = eval {
            let identity = y.shape() == x.shape()
                && y.iter()
                    .zip(x.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            accepted.push(format!(
                "{rate} (eval {})",
                if identity { "identity" } else { "NOT identity" }
            ));
        }
    }
    CheckReport::convention(
        CHECK,
        &subject.name(),
        if accepted.is_empty() {
            "refused -0.1, 1.5 and NaN".into()
        } else {
            format!("accepted {}", accepted.join(", "))
        },
        "each refused with an error".into(),
        accepted.is_empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::error::{unsupported, Result};
    use crate::layers::Dropout;

    /// A dropout that can show its last mask and nothing else: no backward
    /// pass, no reseeding.
    struct MaskOnly {
        inner: Dropout<f32>,
        mask: Option<ArrayD<bool>>,
    }

    impl DropoutLike<f32> for MaskOnly {
        fn rate(&self) -> f64 {
            DropoutLike::<f32>::rate(&self.inner)
        }
        fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
            let shape = x.raw_dim();
            let y = DropoutLike::run(&mut self.inner, x, phase)?;
            let dx = self.inner.run_backward(ArrayD::ones(shape))?;
            self.mask = Some(dx.mapv(|g| g != 0.0));
            Ok(y)
        }
        fn last_mask(&self) -> Result<ArrayD<bool>> {
            self.mask
                .clone()
                .map_or_else(|| unsupported(Capability::Mask), Ok)
        }
    }

    /// A subject's own mask is the first source read: without it, this layer
    /// (no backward pass, no seeding) could only be judged on what its output
    /// shows.
    #[test]
    fn a_layer_that_shows_its_mask_is_judged_through_it() {
        let mut layer = MaskOnly {
            inner: Dropout::new(0.3).unwrap().with_seed(4),
            mask: None,
        };
        let reports = check_special_values(
            "mask only",
            &mut layer,
            &Capabilities::of(&[Capability::Mask]),
            &[8, 16],
            2,
        );
        for r in &reports {
            assert!(r.observed.contains("(mask)"), "{}", r.line());
        }
        assert!(reports.iter().all(|r| r.pass), "{reports:#?}");
    }

    /// A dropout that can only be reseeded: no mask, no backward pass.
    struct ReseedOnly(Dropout<f32>);

    impl DropoutLike<f32> for ReseedOnly {
        fn rate(&self) -> f64 {
            DropoutLike::<f32>::rate(&self.0)
        }
        fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
            DropoutLike::run(&mut self.0, x, phase)
        }
        fn reseed(&mut self, seed: u64) -> Result<()> {
            DropoutLike::<f32>::reseed(&mut self.0, seed)
        }
    }

    /// With seeding as the only way in, the mask is read from a same-seed call
    /// on positive input, and the real layer passes judged through it.
    #[test]
    fn a_layer_that_only_reseeds_is_judged_through_a_same_seed_call() {
        let mut layer = ReseedOnly(Dropout::new(0.3).unwrap().with_seed(4));
        let reports = check_special_values(
            "reseed only",
            &mut layer,
            &Capabilities::of(&[Capability::Reseed]),
            &[8, 16],
            2,
        );
        for r in &reports {
            assert!(
                r.observed
                    .contains("(mask read from a same-seed call on positive input)"),
                "{}",
                r.line()
            );
        }
        assert!(reports.iter().all(|r| r.pass), "{reports:#?}");
    }

    /// An output of another shape has no unit to line up with its input: both
    /// records are errors, never verdicts on misaligned units.
    #[test]
    fn a_wrongly_shaped_output_is_an_error_in_both_records() {
        let mut short = crate::check::subjects::observed::zeros_of_shape(vec![4, 16]);
        let reports = check_special_values("short", &mut short, &Capabilities::none(), &[8, 16], 2);
        assert_eq!(reports.len(), 2);
        for r in &reports {
            assert!(
                !r.pass && r.observed.contains("output shape [4, 16]"),
                "{}",
                r.line()
            );
        }
    }

    /// A layer that shows only its output (no mask, backward pass or seeding)
    /// is judged on what the output proves: a NaN input kept as NaN proves
    /// neither a keep nor a drop, so a right dropout passes both records.
    #[test]
    fn an_output_only_layer_is_judged_on_what_its_output_proves() {
        struct OutputOnly(Dropout<f32>);
        impl DropoutLike<f32> for OutputOnly {
            fn rate(&self) -> f64 {
                DropoutLike::<f32>::rate(&self.0)
            }
            fn run(&mut self, x: ArrayD<f32>, phase: Phase) -> Result<ArrayD<f32>> {
                DropoutLike::run(&mut self.0, x, phase)
            }
        }
        let mut layer = OutputOnly(Dropout::new(0.5).unwrap().with_seed(4));
        let reports = check_special_values(
            "output only",
            &mut layer,
            &Capabilities::none(),
            &[8, 16],
            2,
        );
        assert_eq!(reports.len(), 2);
        for r in &reports {
            assert!(r.pass, "{}", r.line());
        }
    }
}
