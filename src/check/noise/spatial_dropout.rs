//! Checks of SPEC §2b for SpatialDropout: whole channels drop, and the channel
//! drop count is binomial.
//!
//! A *lane* is one (sample, channel) pair: every element of a batch with that
//! batch index and channel index. The expected scale comes from the claimed
//! rate (as in [`crate::check::dropout`]), never from the layer.

use super::harness::{noise_label, with_noise_layer};
use crate::check::capability::Capability;
use crate::check::dropout::scale_recipe::ScaleRecipe;
use crate::check::registry::{Judged, NoiseCheck, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::stats::{binomial_region, smallest_detectable_bias};
use crate::check::subjects::{BoxedDropout, DropoutLike, NoiseKind, NoiseSubject};
use crate::layers::DataFormat;
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;

/// SpatialDropout2D's two layouts: data format, input shape, channel axis.
const LAYOUTS: [(DataFormat, [usize; 4], usize); 2] = [
    (DataFormat::ChannelsLast, [8, 4, 4, 16], 3),
    (DataFormat::ChannelsFirst, [8, 16, 4, 4], 1),
];

/// Every (sample, channel) all dropped or all kept and scaled exactly, in both
/// data formats (channels-first where the subject has it).
pub const WHOLE_CHANNELS: NoiseCheck = NoiseCheck {
    records: &[RecordSpec::invariant(
        "spatial_whole_channels",
        "SpatialDropout drops or keeps each (sample, channel) whole, survivors scaled exactly by one listed recipe",
    )],
    needs: &[],
    judged: Judged::Exact,
    run: run_whole_channels,
};

/// The channel drop count, exactly binomial, in both data formats.
pub const CHANNEL_RATE: NoiseCheck = NoiseCheck {
    records: &[RecordSpec::invariant(
        "spatial_channel_drop_rate",
        "SpatialDropout's channel drop count lies in the exact binomial region",
    )],
    needs: &[],
    judged: Judged::Statistical,
    run: run_channel_rate,
};

/// Runs `check` on a SpatialDropout2D of each layout the subject has; a
/// subject without channels-first gets that layout's record not applicable.
fn each_layout(
    subject: &dyn NoiseSubject,
    case: &DropoutCase,
    id: &str,
    check: impl Fn(&str, &mut BoxedDropout, &[usize], usize) -> CheckReport,
) -> Vec<CheckReport> {
    let caps = subject.capabilities();
    LAYOUTS
        .iter()
        .flat_map(|&(format, shape, axis)| {
            let label = noise_label(&format!("SpatialDropout2D {format:?}"), case);
            if format == DataFormat::ChannelsFirst && !caps.has(Capability::ChannelsFirst) {
                let name = Capability::ChannelsFirst.to_string();
                return vec![CheckReport::not_applicable(id, &label, &name)];
            }
            let kind = NoiseKind::SpatialDropout { rank: 2, format };
            with_noise_layer(subject, &[id], &label, kind, case, 3, |mut l| {
                vec![check(&label, &mut l, &shape, axis)]
            })
        })
        .collect()
}

fn run_whole_channels(
    subject: &dyn NoiseSubject,
    case: &DropoutCase,
    _: &Settings,
) -> Vec<CheckReport> {
    each_layout(
        subject,
        case,
        WHOLE_CHANNELS.id(),
        |label, layer, shape, axis| {
            check_spatial_channels_exact(label, layer, case.rate, shape, axis)
        },
    )
}

fn run_channel_rate(
    subject: &dyn NoiseSubject,
    case: &DropoutCase,
    s: &Settings,
) -> Vec<CheckReport> {
    each_layout(
        subject,
        case,
        CHANNEL_RATE.id(),
        |label, layer, shape, axis| {
            check_spatial_channel_drop_rate(label, layer, case.rate, shape, axis, 100, s.alpha)
        },
    )
}

/// What one train call did to each lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LaneTally {
    lanes: u64,
    kept: u64,
    dropped: u64,
    mixed: u64,
}

/// Tallies lanes of one call: a lane is dropped when every element is `+0.0`,
/// kept when every element is exactly `recipe.apply(x, rate)`, else mixed (a
/// violation). Assumes `x` has no element whose scaled value is `+0.0`.
fn tally<F: Element>(
    x: &ArrayD<F>,
    y: &ArrayD<F>,
    recipe: ScaleRecipe,
    rate: f64,
    channel_axis: usize,
) -> LaneTally {
    let channels = x.shape()[channel_axis];
    let lanes = x.shape()[0] * channels;
    // Per lane: (all dropped so far, all kept so far).
    let mut state = vec![(true, true); lanes];
    let zero = F::zero().to_bits_u64();
    for ((index, &x), &y) in x.indexed_iter().zip(y.iter()) {
        let lane = index[0] * channels + index[channel_axis];
        let y = y.to_bits_u64();
        let s = &mut state[lane];
        s.0 &= y == zero;
        s.1 &= y == recipe.apply(x, rate).to_bits_u64();
    }
    let mut t = LaneTally {
        lanes: lanes as u64,
        ..LaneTally::default()
    };
    for (dropped, kept) in state {
        match (dropped, kept) {
            (true, _) => t.dropped += 1,
            (false, true) => t.kept += 1,
            (false, false) => t.mixed += 1,
        }
    }
    t
}

/// The input both checks use: nonzero, finite and distinct per position, so a
/// kept element is never `+0.0` and a per-element mask shows as mixed lanes.
fn lane_input<F: Element>(shape: &[usize]) -> ArrayD<F> {
    let mut i = 0u32;
    ArrayD::from_shape_simple_fn(shape.to_vec(), || {
        i += 1;
        F::round_from(1.0 + f64::from(i % 97) / 64.0)
    })
}

/// One train call on a batch of `shape` (batch first, channel axis
/// `channel_axis`): every lane is all `+0.0` or all exactly `x / (1 - rate)`
/// by one [`ScaleRecipe`] for the whole call (SPEC's, `x * f32(1/(1-p))`, or
/// another honest rounding, named in the record); no lane mixes the two.
pub fn check_spatial_channels_exact<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    rate: f64,
    shape: &[usize],
    channel_axis: usize,
) -> CheckReport {
    let check = "spatial_whole_channels";
    if channel_axis == 0 || channel_axis >= shape.len() {
        return CheckReport::errored(check, subject, "channel axis out of range");
    }
    let x = lane_input::<F>(shape);
    // The recipe that explains the most lanes: SPEC's where it does as well.
    let (recipe, t) = match layer.run(x.clone(), Phase::Train) {
        Ok(y) if y.shape() == x.shape() => ScaleRecipe::ALL
            .iter()
            .map(|&r| (r, tally(&x, &y, r, rate, channel_axis)))
            .min_by_key(|(_, t)| t.mixed)
            .expect("at least one recipe"),
        Ok(y) => return CheckReport::errored(check, subject, format!("shape {:?}", y.shape())),
        Err(e) => return CheckReport::errored(check, subject, e),
    };
    let kept = if recipe == ScaleRecipe::SPEC {
        format!("x*{}", 1.0 / (1.0 - rate))
    } else {
        recipe.describe(F::NAME)
    };
    CheckReport::exact(
        check,
        subject,
        format!(
            "{} lanes: {} all kept {kept}, {} all +0.0, {} mixed",
            t.lanes, t.kept, t.dropped, t.mixed
        ),
        "0 mixed: each (sample, channel) is all +0.0 or all x*scale bit-exact, by one listed recipe"
            .into(),
        t.mixed == 0 && t.lanes > 0,
    )
}

/// Over `calls` train calls on batches of `shape`, the number of dropped lanes
/// lies in the exact binomial region of Binomial(lanes, rate) at `alpha`. Mixed
/// lanes count as not dropped (the exactness check is their judge).
pub fn check_spatial_channel_drop_rate<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    rate: f64,
    shape: &[usize],
    channel_axis: usize,
    calls: usize,
    alpha: f64,
) -> CheckReport {
    let check = "spatial_channel_drop_rate";
    if channel_axis == 0 || channel_axis >= shape.len() {
        return CheckReport::errored(check, subject, "channel axis out of range");
    }
    let x = lane_input::<F>(shape);
    let (mut lanes, mut dropped) = (0u64, 0u64);
    for _ in 0..calls {
        match layer.run(x.clone(), Phase::Train) {
            Ok(y) if y.shape() == x.shape() => {
                // A dropped lane is all +0.0 whatever the recipe of the kept ones.
                let t = tally(&x, &y, ScaleRecipe::SPEC, rate, channel_axis);
                lanes += t.lanes;
                dropped += t.dropped;
            }
            Ok(y) => return CheckReport::errored(check, subject, format!("shape {:?}", y.shape())),
            Err(e) => return CheckReport::errored(check, subject, e),
        }
    }
    let (lo, hi) = binomial_region(lanes, rate, alpha);
    let n = lanes.max(1) as f64;
    CheckReport {
        check: check.into(),
        subject: subject.into(),
        observed: format!(
            "{dropped}/{lanes} channels dropped = {:.5}",
            dropped as f64 / n
        ),
        bound: format!(
            "[{lo}, {hi}] = [{:.5}, {:.5}] for p = {rate}",
            lo as f64 / n,
            hi as f64 / n
        ),
        alpha: Some(alpha),
        detectable: (0.0 < rate && rate < 1.0 && lanes > 0).then(|| {
            format!(
                "rate bias >= {:.5} (power 0.99)",
                smallest_detectable_bias(lanes, rate, alpha)
            )
        }),
        pass: lanes > 0 && (lo..=hi).contains(&dropped),
        kind: crate::check::report::RecordKind::Invariant,
        not_applicable: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::LayerAsDropout;
    use crate::layers::{DataFormat, Dropout, SpatialDropout};

    /// Lanes a shorter output never reaches would read as dropped if the
    /// shape went unchecked.
    #[test]
    fn a_wrongly_shaped_output_is_an_error_in_both_checks() {
        let mut short = crate::check::subjects::observed::zeros_of_shape(vec![1, 8, 3]);
        let exact = check_spatial_channels_exact("short", &mut short, 0.5, &[4, 8, 3], 1);
        let rate =
            check_spatial_channel_drop_rate("short", &mut short, 0.5, &[4, 8, 3], 1, 5, 1e-9);
        for r in [exact, rate] {
            assert!(
                !r.pass && r.line().contains("shape [1, 8, 3]"),
                "{}",
                r.line()
            );
        }
    }

    #[test]
    fn spatial_passes_and_per_element_dropout_fails() {
        let mut sd = LayerAsDropout::new(
            Box::new(
                SpatialDropout::<f32>::new_2d(0.5, DataFormat::ChannelsFirst)
                    .unwrap()
                    .with_seed(2),
            ),
            0.5,
        );
        assert!(check_spatial_channels_exact("sd", &mut sd, 0.5, &[4, 8, 3, 3], 1).pass);
        assert!(
            check_spatial_channel_drop_rate("sd", &mut sd, 0.5, &[4, 8, 3, 3], 1, 50, 1e-9).pass
        );
        let mut plain = Dropout::<f32>::new(0.5).unwrap().with_seed(2);
        assert!(!check_spatial_channels_exact("plain", &mut plain, 0.5, &[4, 8, 3, 3], 1).pass);
    }

    #[test]
    fn a_channel_drop_rate_off_the_claim_is_rejected() {
        let layer = SpatialDropout::<f32>::new_1d(0.3).unwrap().with_seed(4);
        let mut sd = LayerAsDropout::new(Box::new(layer), 0.5);
        let r = check_spatial_channel_drop_rate("sd", &mut sd, 0.5, &[64, 3, 32], 2, 20, 1e-9);
        assert!(!r.pass, "{}", r.line());
        let r = check_spatial_channel_drop_rate("sd", &mut sd, 0.3, &[64, 3, 32], 2, 20, 1e-9);
        assert!(r.pass, "{}", r.line());
    }

    #[test]
    fn the_channel_drop_rate_states_power_only_where_a_bias_can_exist() {
        for (rate, power) in [(0.0, false), (0.5, true), (1.0, false)] {
            let layer = SpatialDropout::<f32>::new_1d(rate).unwrap().with_seed(4);
            let mut sd = LayerAsDropout::new(Box::new(layer), rate);
            let r = check_spatial_channel_drop_rate("sd", &mut sd, rate, &[4, 3, 8], 2, 20, 1e-9);
            assert!(r.pass && r.detectable.is_some() == power, "{}", r.line());
        }
    }

    /// The batch axis or an axis past the rank is no channel axis: both checks
    /// say so rather than tally lanes across samples or index out of bounds.
    #[test]
    fn a_channel_axis_out_of_range_is_an_error_in_both_checks() {
        let shape = [4, 8, 3];
        for axis in [0, 3] {
            let mut layer = crate::check::subjects::observed::zeros_of_shape(shape.to_vec());
            let exact = check_spatial_channels_exact("axis", &mut layer, 0.5, &shape, axis);
            let rate =
                check_spatial_channel_drop_rate("axis", &mut layer, 0.5, &shape, axis, 5, 1e-9);
            for r in [exact, rate] {
                assert!(
                    !r.pass && r.line().contains("channel axis out of range"),
                    "axis {axis}: {}",
                    r.line()
                );
            }
        }
    }

    /// No calls, no lanes: nothing was drawn, so there is neither a verdict to
    /// pass nor a power to state.
    #[test]
    fn a_channel_drop_rate_over_no_calls_fails_and_states_no_power() {
        let mut layer = crate::check::subjects::observed::zeros_of_shape(vec![4, 8, 3]);
        let r = check_spatial_channel_drop_rate("none", &mut layer, 0.5, &[4, 8, 3], 1, 0, 1e-9);
        assert!(!r.pass && r.detectable.is_none(), "{}", r.line());
    }

    /// Every lane lands in one tally by what it holds: all `+0.0`, all
    /// `x * scale`, or a mix.
    #[test]
    fn the_tally_counts_each_lane_once_by_what_it_holds() {
        // Batch 2, steps 3, channels 4 on the last axis: 8 lanes. Channel 0 is
        // dropped, channel 1 loses only its first step, channels 2 and 3 are kept.
        let x = lane_input::<f32>(&[2, 3, 4]);
        let scale = 2.0f32;
        let y = ArrayD::from_shape_fn(x.raw_dim(), |i| match (i[2], i[1]) {
            (0, _) | (1, 0) => 0.0,
            _ => x[&i] * scale,
        });
        let t = tally(&x, &y, ScaleRecipe::SPEC, 0.5, 2);
        assert_eq!(
            t,
            LaneTally {
                lanes: 8,
                kept: 4,
                dropped: 2,
                mixed: 2
            }
        );
    }

    /// A call over an empty batch has no lane to judge: it fails rather than
    /// pass on nothing.
    #[test]
    fn a_call_with_no_lanes_fails_the_whole_channel_check() {
        let mut sd = LayerAsDropout::new(
            Box::new(SpatialDropout::<f32>::new_1d(0.5).unwrap().with_seed(2)),
            0.5,
        );
        let r = check_spatial_channels_exact("empty", &mut sd, 0.5, &[0, 8, 3], 2);
        assert!(!r.pass && r.observed.starts_with("0 lanes"), "{}", r.line());
    }

    /// The lane input is what the tally assumes: finite and never zero, so a
    /// kept element can never read as dropped.
    #[test]
    fn the_lane_input_is_finite_and_never_zero() {
        let x = lane_input::<f32>(&[4, 8, 3, 3]);
        assert!(x.iter().all(|v| v.is_finite() && *v != 0.0));
    }

    /// Positions within 97 of each other hold distinct values, as the input's
    /// documentation says.
    #[test]
    fn the_lane_input_is_distinct_per_position() {
        let x = lane_input::<f32>(&[1, 97]);
        let mut bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        assert_eq!(bits.len(), 97);
    }

    /// Whole channels scaled by another honest rounding (`x / f32(1-p)`, at a
    /// rate where it differs from SPEC's) pass and are named; a scale off by
    /// an ulp fits no recipe and every kept lane is mixed.
    #[test]
    fn kept_channels_may_follow_any_one_listed_recipe() {
        use crate::check::dropout::scale_recipe::ScaleFormula;
        let rate = 0.15;
        let division = ScaleRecipe {
            formula: ScaleFormula::DivisionInElement,
            rate_in_f32: false,
        };
        let x = lane_input::<f32>(&[8, 4, 4, 16]);
        assert!(x
            .iter()
            .any(|&v| division.apply(v, rate) != ScaleRecipe::SPEC.apply(v, rate)));
        // Channels 0..8 kept, 8..16 dropped, scaled by `scale`.
        let lanes = |scale: fn(f32) -> f32| {
            let y =
                ArrayD::from_shape_fn(x.raw_dim(), |i| if i[3] < 8 { scale(x[&i]) } else { 0.0 });
            crate::check::subjects::observed::fixed_output(y, rate)
        };
        let mut honest = lanes(|v| v / (1.0f32 - 0.15f64 as f32));
        let r = check_spatial_channels_exact("div", &mut honest, rate, &[8, 4, 4, 16], 3);
        assert!(
            r.pass && r.observed.contains("x / f32(1-p)"),
            "{}",
            r.line()
        );
        let mut off = lanes(|v| v * f32::from_bits(((1.0 / 0.85f64) as f32).to_bits() + 1));
        let r = check_spatial_channels_exact("off", &mut off, rate, &[8, 4, 4, 16], 3);
        assert!(!r.pass && r.observed.contains("64 mixed"), "{}", r.line());
    }
}
