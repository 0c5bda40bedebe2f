//! Fuzz target `dropout`: the exact invariants of SPEC §2 on arbitrary input.
//!
//! The bytes choose a rate (any `f64` bit pattern, or a special value), a shape
//! of rank 0 to 4 (zero-sized and, when an axis is 0, enormous axes included), an
//! optional noise shape (valid or not), a seed, and a sequence of calls in either
//! phase on values that include NaN, infinities, subnormals and -0.0.
//!
//! Invariants checked, bit for bit (the values of each call through the suite's
//! own `check_eval_identity` and `check_train_call_exact`, whose report line is
//! the panic message; the body adds what those checks cannot see from one call:
//! the reference mask, the counters, the errors):
//! - `Dropout::new` rejects exactly the rates outside `[0, 1]` (NaN included) with
//!   [`Error::InvalidRate`] naming the rate; the threshold is within 2^-33 of the rate
//!   and the scale is `1 / (1 - rate)` computed in f64 and rounded once to f32.
//! - A noise shape that does not fit gives [`Error::InvalidNoiseShape`] (a mask too
//!   large for the element cap gives [`Error::TooLarge`]) and the call changes no
//!   counter.
//! - `Eval`, and `Train` at rate 0: the output is the input, every bit; `apply_view`
//!   returns a borrowed view.
//! - `Train` otherwise: each element is `+0.0` where the mask of the module-level
//!   definition ([`reference_mask`] for this seed and call) drops its cell, and
//!   exactly `x * scale` where it keeps it; at rate 1 every element is `+0.0`.
//! - Backward uses the forward's mask: `dy * scale` where kept, `+0.0` where dropped.
//! - The counters grow by the units, cells and drops of the call, and only in `Train`.

use super::{any_f32, len_within, FuzzResult, MAX_FUZZ_ELEMENTS};
use arbitrary::Unstructured;
use ndarray::{ArrayD, IxDyn};
use nncheck::check::dropout::identity::check_eval_identity;
use nncheck::check::dropout::survivors::check_train_call_exact;
use nncheck::check::DropoutLike;
use nncheck::error::Error;
use nncheck::layer::Layer;
use nncheck::layers::dropout::{drop_threshold, reference_mask, Dropout, DropoutStats};
use nncheck::phase::Phase;
use nncheck::tensor::{checked_len, MAX_ELEMENTS};

/// Runs the `dropout` target on one input. Panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = body(&mut u);
}

/// A rate: often special, otherwise any bit pattern or a value inside `[0, 1]`.
fn rate(u: &mut Unstructured<'_>) -> arbitrary::Result<f64> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 => 0.0,
        1 => -0.0,
        2 => 1.0,
        3 => 0.5,
        4 => f64::NAN,
        5 => f64::INFINITY,
        6 => f64::NEG_INFINITY,
        7 => 1.0 + f64::EPSILON,
        8 => 1.0 - f64::EPSILON / 2.0,
        9 => f64::from_bits(u.int_in_range(1u64..=0x000f_ffff_ffff_ffff)?), // subnormal
        10 => 1.0 - f64::from(u.int_in_range(1u32..=64)?) * 2f64.powi(-34), // near 1
        11 => f64::from(u.int_in_range(1u32..=64)?) * 2f64.powi(-34),       // near 0
        12 | 13 => f64::from(u.arbitrary::<u32>()?) / f64::from(u32::MAX),
        _ => f64::from_bits(u.arbitrary::<u64>()?),
    })
}

/// One axis length: usually small; rarely enormous (only used when another axis is 0).
fn dim(u: &mut Unstructured<'_>) -> arbitrary::Result<usize> {
    Ok(match u.int_in_range(0u8..=31)? {
        0 => 0,
        1 => 1usize << 40,
        2 => MAX_ELEMENTS + 1,
        n => usize::from(n % 9),
    })
}

fn body(u: &mut Unstructured<'_>) -> FuzzResult {
    let rate = rate(u)?;
    let layer = match Dropout::<f32>::new(rate) {
        Err(Error::InvalidRate { rate: named }) => {
            assert!(!(0.0..=1.0).contains(&rate), "valid rate {rate} rejected");
            assert_eq!(named.to_bits(), rate.to_bits(), "the error names the rate");
            return Ok(());
        }
        Err(e) => panic!("rate {rate}: unexpected error {e}"),
        Ok(layer) => {
            assert!((0.0..=1.0).contains(&rate), "invalid rate {rate} accepted");
            layer
        }
    };
    // Scale and threshold (SPEC §2: scale rounded once; resolution 2^-32).
    let expected_scale = if rate < 1.0 {
        (1.0 / (1.0 - rate)) as f32
    } else {
        0.0
    };
    assert_eq!(layer.scale().to_bits(), expected_scale.to_bits(), "scale");
    let threshold = layer.threshold();
    assert_eq!(threshold, drop_threshold(rate));
    assert!(
        (threshold as f64 / 4_294_967_296.0 - rate).abs() <= 2f64.powi(-33),
        "threshold {threshold} too far from rate {rate}"
    );

    // Shape: rank 0..=4. Enormous axes only next to a zero axis, so that nothing
    // is allocated for them.
    let rank = u.int_in_range(0usize..=4)?;
    let mut shape: Vec<usize> = (0..rank).map(|_| dim(u)).collect::<Result<_, _>>()?;
    let has_zero = shape.contains(&0);
    let mut huge_seen = false;
    for d in &mut shape {
        if *d > 8 {
            // At most one enormous axis, and only beside a zero axis, so that
            // ndarray can describe the (empty) array.
            if !has_zero || huge_seen {
                *d = 8;
            }
            huge_seen = true;
        }
    }
    let elements = len_within(&shape, MAX_FUZZ_ELEMENTS).unwrap_or(0);
    if elements == 0 && !has_zero {
        return Ok(()); // too many elements for a fast run
    }

    // Noise shape: none, or a list of entries (sometimes of the wrong length).
    let noise: Option<Vec<Option<usize>>> = if u.arbitrary()? {
        let len = match u.int_in_range(0u8..=7)? {
            0 => rank.saturating_sub(1),
            1 => rank + 1,
            _ => rank,
        };
        let mut entries = Vec::with_capacity(len);
        for i in 0..len {
            entries.push(match u.int_in_range(0u8..=5)? {
                0 | 1 => None,
                2 | 3 => Some(1),
                4 => shape.get(i).copied(),
                _ => Some(usize::from(u.int_in_range(0u8..=9)?)),
            });
        }
        Some(entries)
    } else {
        None
    };
    let seed: u64 = u.arbitrary()?;
    let mut layer = layer.with_seed(seed);
    if let Some(noise) = &noise {
        layer = layer.with_noise_shape(noise.clone());
    }

    // The cell shape the layer must resolve, or None when the noise shape is invalid.
    let cell_shape: Option<Vec<usize>> = match &noise {
        None => Some(shape.clone()),
        Some(n) if n.len() == rank => {
            let resolved: Vec<usize> = n.iter().zip(&shape).map(|(e, &s)| e.unwrap_or(s)).collect();
            resolved
                .iter()
                .zip(&shape)
                .all(|(&c, &s)| c == s || c == 1)
                .then_some(resolved)
        }
        Some(_) => None,
    };
    assert_eq!(
        layer.resolve_noise_shape(&shape).ok(),
        cell_shape,
        "noise shape {noise:?} on {shape:?}"
    );

    let calls = u.int_in_range(1u8..=4)?;
    for _ in 0..calls {
        let phase = if u.arbitrary()? {
            Phase::Train
        } else {
            Phase::Eval
        };
        let x = if has_zero {
            ArrayD::zeros(IxDyn(&shape))
        } else {
            let mut values = Vec::with_capacity(elements);
            for _ in 0..elements {
                values.push(any_f32(u)?);
            }
            ArrayD::from_shape_vec(shape.clone(), values).expect("product")
        };
        let use_view = u.arbitrary()?;
        one_call(&mut layer, &x, phase, cell_shape.as_deref(), use_view, u)?;
    }
    Ok(())
}

fn bits(x: f32) -> u32 {
    x.to_bits()
}

/// The body's call as the checks see it: it runs in the phase the body drew,
/// whatever phase a check asks for, because the body picks the check that fits
/// that phase (eval identity for `Eval` and for `Train` at rate 0, the survivor
/// audit otherwise). It keeps the output for the body's own mask checks.
struct BodyCall<'a> {
    layer: &'a mut Dropout<f32>,
    phase: Phase,
    use_view: bool,
    output: Option<ArrayD<f32>>,
}

impl DropoutLike<f32> for BodyCall<'_> {
    fn rate(&self) -> f64 {
        self.layer.rate()
    }
    fn run(&mut self, x: ArrayD<f32>, _asked: Phase) -> nncheck::check::Result<ArrayD<f32>> {
        let result = if self.use_view {
            self.layer.apply_view(x.view(), self.phase).map(|cow| {
                if self.phase == Phase::Eval {
                    assert!(cow.is_view(), "eval apply_view copied its input");
                }
                cow.into_owned()
            })
        } else {
            self.layer.apply(x, self.phase)
        };
        self.output = result.as_ref().ok().cloned();
        Ok(result?)
    }
    fn run_backward(&mut self, dy: ArrayD<f32>) -> nncheck::check::Result<ArrayD<f32>> {
        Ok(self
            .layer
            .backward(dy, true)?
            .expect("input gradient requested"))
    }
}

/// One forward (and maybe backward) call, with every exact check of SPEC §2.
fn one_call(
    layer: &mut Dropout<f32>,
    x: &ArrayD<f32>,
    phase: Phase,
    cell_shape: Option<&[usize]>,
    use_view: bool,
    u: &mut Unstructured<'_>,
) -> FuzzResult {
    let stats_before = layer.stats();
    let call = layer.calls();
    let rejected = match cell_shape {
        None => Some("invalid noise shape"),
        Some(cells) if phase == Phase::Train && checked_len(cells).is_err() => {
            Some("mask too large")
        }
        Some(_) => None,
    };
    if let Some(why) = rejected {
        let result = if use_view {
            layer
                .apply_view(x.view(), phase)
                .map(|cow| cow.into_owned())
        } else {
            layer.apply(x.clone(), phase)
        };
        if cell_shape.is_none() {
            assert!(
                matches!(result, Err(Error::InvalidNoiseShape { .. })),
                "{why} not rejected: {result:?}"
            );
        } else {
            assert!(
                matches!(result, Err(Error::TooLarge { .. })),
                "{why}: mask of {cell_shape:?} cells: {result:?}"
            );
        }
        assert_eq!(layer.stats(), stats_before, "rejected call counted");
        assert_eq!(layer.calls(), call, "rejected call advanced the stream");
        return Ok(());
    }
    let cell_shape = cell_shape.expect("a valid call has cells");

    // The values of the call through the suite's own checks: the identity, or
    // every output +0.0 or exactly x * scale (an empty call has nothing to audit).
    let identity = phase == Phase::Eval || layer.rate() == 0.0;
    let subject = format!("fuzz Dropout({}) {:?} {phase:?}", layer.rate(), x.shape());
    let mut body_call = BodyCall {
        layer,
        phase,
        use_view,
        output: None,
    };
    let report = if identity {
        check_eval_identity(&subject, &mut body_call, x)
    } else {
        check_train_call_exact(&subject, &mut body_call, x)
    };
    let y = body_call
        .output
        .unwrap_or_else(|| panic!("valid call failed: {}", report.line()));
    assert!(report.pass || x.is_empty(), "{}", report.line());
    assert_eq!(y.shape(), x.shape(), "output shape");
    let layer = body_call.layer;

    let scale = layer.scale();
    let dropped: Option<ArrayD<bool>> = if phase == Phase::Eval {
        assert_eq!(layer.stats(), stats_before, "eval call counted");
        assert_eq!(layer.calls(), call, "eval call advanced the stream");
        None
    } else {
        train_checks(layer, x, &y, call, cell_shape, stats_before)
    };

    // Backward with the forward's mask (the view path keeps no cache when it
    // returns the input as it is, so only the owned path is checked).
    if !use_view && u.arbitrary()? {
        let wrong = u.ratio(1u8, 8)?;
        let dy_shape: Vec<usize> = if wrong {
            let mut s = x.shape().to_vec();
            s.push(1);
            s
        } else {
            x.shape().to_vec()
        };
        let dy = if x.is_empty() || wrong {
            ArrayD::zeros(IxDyn(&dy_shape))
        } else {
            let mut v = Vec::with_capacity(x.len());
            for _ in 0..x.len() {
                v.push(any_f32(u)?);
            }
            ArrayD::from_shape_vec(dy_shape.clone(), v).expect("product")
        };
        let back = layer.backward(dy.clone(), true);
        if wrong {
            assert!(matches!(back, Err(Error::ShapeMismatch { .. })), "{back:?}");
            return Ok(());
        }
        let dx = back
            .unwrap_or_else(|e| panic!("backward failed: {e}"))
            .expect("input gradient requested");
        match &dropped {
            None => assert!(
                dx.iter().zip(dy.iter()).all(|(a, b)| bits(*a) == bits(*b)),
                "rate-0 backward is not the identity"
            ),
            Some(mask) => {
                for ((&g, &d), &drop) in dx.iter().zip(dy.iter()).zip(mask.iter()) {
                    let want = if drop { 0 } else { bits(d * scale) };
                    assert_eq!(bits(g), want, "backward of {d} gave {g}");
                }
            }
        }
        assert_eq!(layer.backward(dy, false), Ok(None));
    }
    Ok(())
}

/// The `Train` checks: counters, and every element against the reference mask.
/// Returns the dropped-unit mask (broadcast to `x`), or `None` at rate 0.
fn train_checks(
    layer: &Dropout<f32>,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
    call: u64,
    cell_shape: &[usize],
    stats_before: DropoutStats,
) -> Option<ArrayD<bool>> {
    let cells: usize = cell_shape.iter().product();
    let units = x.len() as u64;
    assert_eq!(
        layer.calls(),
        call + 1,
        "train call did not advance the stream"
    );
    let stats = layer.stats();
    assert_eq!(stats.train_calls, stats_before.train_calls + 1);
    assert_eq!(stats.units_seen, stats_before.units_seen + units);
    assert_eq!(stats.draws, stats_before.draws + cells as u64);
    let scale = layer.scale();
    if layer.rate() == 0.0 {
        assert_eq!(stats.units_dropped, stats_before.units_dropped);
        assert_eq!(stats.draws_dropped, stats_before.draws_dropped);
        return None;
    }
    let cell_mask = reference_mask(layer.seed(), call, layer.threshold(), cells);
    let cells_dropped = cell_mask.iter().filter(|&&d| d).count() as u64;
    let cell_mask = ArrayD::from_shape_vec(cell_shape.to_vec(), cell_mask).expect("cells");
    let mask = cell_mask
        .broadcast(x.raw_dim())
        .expect("a valid noise shape broadcasts")
        .to_owned();
    // The values are the survivor audit's business; here, which units drop: those
    // the reference mask drops. Where x * scale is +0.0 a keep and a drop look
    // alike, so those units say nothing.
    let mut dropped_units = 0u64;
    for ((&out, &inp), &drop) in y.iter().zip(x.iter()).zip(mask.iter()) {
        dropped_units += u64::from(drop);
        if bits(inp * scale) != 0 {
            assert_eq!(
                bits(out) == 0,
                drop,
                "unit {inp} gave {out}; the reference mask drops it: {drop}"
            );
        }
    }
    if layer.rate() == 1.0 {
        assert!(y.iter().all(|&v| bits(v) == 0), "rate 1 left a non-zero");
    }
    assert_eq!(
        stats.units_dropped,
        stats_before.units_dropped + dropped_units
    );
    assert_eq!(
        stats.draws_dropped,
        stats_before.draws_dropped + cells_dropped
    );
    Some(mask)
}
