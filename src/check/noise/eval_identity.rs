//! `Eval` is the identity for every noise layer (SPEC §2b): the output is the
//! input bit for bit (NaN payloads, `-0.0`, infinities, subnormals) and in the
//! same buffer; the special values every such check runs through.

use super::harness::noise_label;
use crate::check::capability::Capability;
use crate::check::registry::{Judged, NoiseCheck, RecordSpec, Settings};
use crate::check::report::CheckReport;
use crate::check::run::cases::DropoutCase;
use crate::check::subjects::{DropoutLike, NoiseKind, NoiseSubject};
use crate::layers::DataFormat;
use crate::phase::Phase;
use crate::tensor::Element;
use ndarray::ArrayD;

/// `Eval` is the identity for GaussianNoise, GaussianDropout, AlphaDropout and
/// SpatialDropout2D, on special values.
pub const CHECK: NoiseCheck = NoiseCheck {
    records: &[RecordSpec::invariant(
        "eval_identity_bits",
        "in Eval the output is the input bit for bit (NaN payloads, -0.0, infinities, subnormals) and its own buffer",
    )],
    needs: &[],
    judged: Judged::Exact,
    run,
};

fn run(subject: &dyn NoiseSubject, case: &DropoutCase, _: &Settings) -> Vec<CheckReport> {
    let buffer_visible = subject.capabilities().has(Capability::SameBuffer);
    let special = special_values_f32(8)
        .into_shape_with_order(vec![2, 2, 2, 16])
        .expect("128 values");
    let spatial = NoiseKind::SpatialDropout {
        rank: 2,
        format: DataFormat::ChannelsLast,
    };
    [
        (NoiseKind::GaussianNoise, "GaussianNoise", 0),
        (NoiseKind::GaussianDropout, "GaussianDropout", 1),
        (NoiseKind::AlphaDropout, "AlphaDropout", 2),
        (spatial, "SpatialDropout2D", 3),
    ]
    .into_iter()
    .flat_map(|(kind, name, offset)| {
        let label = noise_label(name, case);
        super::harness::with_noise_layer(
            subject,
            &[CHECK.id()],
            &label,
            kind,
            case,
            offset,
            |mut l| {
                vec![if buffer_visible {
                    check_eval_identity_bits(&label, &mut l, &special)
                } else {
                    check_eval_identity_bits_copied(&label, &mut l, &special)
                }]
            },
        )
    })
    .collect()
}

/// A row of values every eval-identity check runs through, as f32 bit patterns:
/// quiet and signalling NaNs with payloads and both signs, `±0.0`, `±inf`, the
/// smallest and largest subnormals, `f32::MIN_POSITIVE`, `f32::MAX` and ordinary values.
pub const SPECIAL_F32_BITS: [u32; 16] = [
    0x7fc0_0000,
    0xffc0_0001,
    0x7fa5_a5a5,
    0xff80_0001,
    0x0000_0000,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x0000_0001,
    0x8000_0001,
    0x007f_ffff,
    0x0080_0000,
    0x7f7f_ffff,
    0x3f80_0000,
    0xbfc0_0000,
    0x4049_0fdb,
];

/// A row of values every eval-identity check runs through, as f64 bit patterns
/// (the same kinds as [`SPECIAL_F32_BITS`]).
pub const SPECIAL_F64_BITS: [u64; 16] = [
    0x7ff8_0000_0000_0000,
    0xfff8_0000_0000_0001,
    0x7ff4_a5a5_a5a5_a5a5,
    0xfff0_0000_0000_0001,
    0x0000_0000_0000_0000,
    0x8000_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x0000_0000_0000_0001,
    0x8000_0000_0000_0001,
    0x000f_ffff_ffff_ffff,
    0x0010_0000_0000_0000,
    0x7fef_ffff_ffff_ffff,
    0x3ff0_0000_0000_0000,
    0xbff8_0000_0000_0000,
    0x4009_21fb_5444_2d18,
];

/// `rows` rows of [`SPECIAL_F32_BITS`]: an input of shape `[rows, 16]` for the
/// eval-identity checks.
///
/// ```
/// let x = nncheck::check::noise::eval_identity::special_values_f32(2);
/// assert_eq!(x.shape(), &[2, 16]);
/// assert!(x[[0, 0]].is_nan() && x[[1, 5]].to_bits() == 0x8000_0000);
/// ```
pub fn special_values_f32(rows: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(vec![rows, 16], |i| f32::from_bits(SPECIAL_F32_BITS[i[1]]))
}

/// `rows` rows of [`SPECIAL_F64_BITS`], shape `[rows, 16]`.
pub fn special_values_f64(rows: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(vec![rows, 16], |i| f64::from_bits(SPECIAL_F64_BITS[i[1]]))
}

/// In `Eval` the output is the input bit for bit (NaN payloads, `-0.0`,
/// infinities, subnormals) *and* the same buffer (no copy was made).
pub fn check_eval_identity_bits<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    eval_identity(subject, layer, x, true)
}

/// [`check_eval_identity_bits`] for a subject whose buffers the caller cannot
/// see (one behind a bridge to another language, which copies arrays both
/// ways): the bits are judged, the buffer is said to be not observable.
pub fn check_eval_identity_bits_copied<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
) -> CheckReport {
    eval_identity(subject, layer, x, false)
}

fn eval_identity<F: Element>(
    subject: &str,
    layer: &mut impl DropoutLike<F>,
    x: &ArrayD<F>,
    judge_buffer: bool,
) -> CheckReport {
    let input = x.clone();
    let ptr = input.as_ptr();
    let (observed, pass) = match layer.run(input, Phase::Eval) {
        Ok(y) if y.shape() == x.shape() => {
            let differing = y
                .iter()
                .zip(x.iter())
                .filter(|(a, b)| a.to_bits_u64() != b.to_bits_u64())
                .count();
            let same_buffer = y.as_ptr() == ptr;
            let buffer = if judge_buffer {
                same_buffer.to_string()
            } else {
                "not observable (copied across a bridge)".into()
            };
            (
                format!(
                    "{differing} of {} elements differ in bits; same buffer: {buffer}",
                    x.len()
                ),
                differing == 0 && (same_buffer || !judge_buffer),
            )
        }
        Ok(y) => (format!("output of shape {:?}", y.shape()), false),
        Err(e) => (format!("error: {e}"), false),
    };
    CheckReport::exact(
        "eval_identity_bits",
        subject,
        observed,
        if judge_buffer {
            "0 differ; the input's own buffer comes back".into()
        } else {
            "0 differ".into()
        },
        pass,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An eval call that hands the input's own buffer back under another
    /// shape keeps every bit and the buffer, and still is not the identity.
    #[test]
    fn eval_identity_fails_the_same_buffer_under_another_shape() {
        struct Flattens;
        impl DropoutLike<f32> for Flattens {
            fn rate(&self) -> f64 {
                0.5
            }
            fn run(&mut self, x: ArrayD<f32>, _phase: Phase) -> crate::check::Result<ArrayD<f32>> {
                let n = x.len();
                Ok(x.into_shape_with_order(ndarray::IxDyn(&[n])).unwrap())
            }
        }
        let x = ArrayD::from_shape_fn(vec![4, 4], |i| (i[0] * 4 + i[1]) as f32 + 1.0);
        let report = check_eval_identity_bits("flattens", &mut Flattens, &x);
        assert!(!report.pass, "{report:?}");
        assert!(
            report.observed.contains("shape [16]"),
            "{}",
            report.observed
        );
    }

    /// Where the buffer cannot be seen the bits are still judged: an eval call
    /// that changes one bit fails, one that copies every bit passes.
    #[test]
    fn the_copied_form_judges_every_bit() {
        struct Copies(bool);
        impl DropoutLike<f32> for Copies {
            fn rate(&self) -> f64 {
                0.5
            }
            fn run(&mut self, x: ArrayD<f32>, _phase: Phase) -> crate::check::Result<ArrayD<f32>> {
                let mut y = x.to_owned();
                if self.0 {
                    y[[0, 13]] = f32::from_bits(y[[0, 13]].to_bits() ^ 1);
                }
                Ok(y)
            }
        }
        let x = special_values_f32(2);
        let honest = check_eval_identity_bits_copied("copies", &mut Copies(false), &x);
        assert!(
            honest.pass && honest.observed.contains("not observable"),
            "{}",
            honest.line()
        );
        assert!(!check_eval_identity_bits("copies", &mut Copies(false), &x).pass);
        let flipped = check_eval_identity_bits_copied("flips", &mut Copies(true), &x);
        assert!(
            !flipped.pass && flipped.observed.starts_with("1 of 32"),
            "{}",
            flipped.line()
        );
    }
}
