//! A deliberately broken dropout: it drops like nncheck's `Dropout` (same mask,
//! same counters) but leaves survivors unscaled, as if `1/(1-p)` were forgotten.
//!
//! Shared by the scenario test and the `broken_dropout_report` example, which
//! show that the main job's report fails when the dropout it audits is wrong.

use ndarray::Zip;
use nncheck::check::subjects::observed::Observed;
use nncheck::{Dropout, Layer, Phase, Result};

/// A scenario factory that builds nncheck's dropout with the survivor scale left
/// out at every dropout position.
pub fn unscaled_dropout(rate: f64, seed: Option<u64>) -> Result<Box<dyn Layer<f32>>> {
    let inner = Dropout::<f32>::new(rate)?;
    let inner = match seed {
        Some(seed) => inner.with_seed(seed),
        None => inner,
    };
    Ok(Box::new(Observed::with_forward(
        Box::new(inner),
        Box::new(|layer, x, ctx| {
            let mut y = layer.forward(x.clone(), ctx)?;
            if ctx.phase == Phase::Train {
                // Where the real layer kept a unit, put the unscaled input back.
                Zip::from(&mut y).and(&x).for_each(|y, &x| {
                    let dropped = y.to_bits() == 0 && x != 0.0;
                    if !dropped {
                        *y = x;
                    }
                });
            }
            Ok(y)
        }),
    )))
}
