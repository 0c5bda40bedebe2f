//! Training-step benches against in-run baselines, so the README reports ratios.
//!
//! Invariants served (SPEC §3): a frozen layer's weight gradients are not
//! computed and backward stops below the last trainable layer, so a fit step of a
//! model whose frozen part holds >= 90% of the parameters takes at most 0.6 of the
//! time of the same step unfrozen; and `Dense` adds little beyond its matrix
//! products.
//!
//! - `fit_step/unfrozen` is the baseline of `fit_step/frozen_base`: one
//!   `train_on_batch` (Adam, MSE) of Dense(512) → ReLU → Dropout(0.2) → Dense(512) →
//!   ReLU as a base model (394,240 parameters, 98% of the total) under a Dense(16)
//!   head, with the base trainable or frozen.
//! - `dense_fwd_bwd/ndarray_dot` (the three products `x·W`, `xᵀ·dy`, `dy·Wᵀ` with
//!   ndarray's `dot`) is the baseline of `dense_fwd_bwd/nncheck` (`Dense` forward
//!   and backward with the input gradient, bias included); `nncheck_frozen` is the
//!   same layer frozen (no weight gradients: two products), against
//!   `ndarray_dot_2` (`x·W`, `dy·Wᵀ`).
//!
//! Run: `cargo bench --bench training`.

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{Array2, ArrayD, Ix2};
use nncheck::optim::Adam;
use nncheck::phase::ForwardCtx;
use nncheck::rng::SeedSequence;
use nncheck::{Dense, Dropout, Layer, Loss, Model, Phase, ReLU, Sequential};
use std::hint::black_box;

const INPUTS: usize = 256;
const BATCH: usize = 128;

/// The benchmark model, its base frozen or not.
fn model(frozen_base: bool) -> Model<f32> {
    let mut base = Sequential::<f32>::new("base")
        .add(Dense::new(512))
        .add(ReLU::new())
        .add(Dropout::new(0.2).unwrap())
        .add(Dense::new(512))
        .add(ReLU::new())
        .build(&[INPUTS], Some(1))
        .unwrap();
    if frozen_base {
        base.freeze();
    }
    let mut model = Sequential::<f32>::new("model")
        .add(base)
        .add(Dense::new(16))
        .build(&[INPUTS], Some(2))
        .unwrap();
    model
        .compile(Adam::new(1e-3), Loss::MeanSquaredError)
        .unwrap();
    model
}

fn data(rows: usize, cols: usize, salt: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(vec![rows, cols], |i| {
        ((i[0] * 31 + i[1] * 17 + salt) % 97) as f32 / 97.0 - 0.5
    })
}

fn bench_fit_step(c: &mut Criterion) {
    let x = data(BATCH, INPUTS, 1);
    let y = data(BATCH, 16, 2);
    let mut group = c.benchmark_group("fit_step");
    group.sample_size(30);
    for (name, frozen) in [("unfrozen", false), ("frozen_base", true)] {
        let mut m = model(frozen);
        let (trainable, frozen_params) = m.count_params();
        if frozen {
            let share = frozen_params as f64 / (trainable + frozen_params) as f64;
            assert!(share >= 0.9, "frozen share {share}");
        }
        group.bench_function(name, |b| {
            b.iter(|| black_box(m.train_on_batch(black_box(&x), &y).unwrap()))
        });
    }
    group.finish();
}

fn bench_dense(c: &mut Criterion) {
    let (batch, inputs, units) = (BATCH, 512, 512);
    let x = data(batch, inputs, 3);
    let dy = data(batch, units, 4);
    let mut group = c.benchmark_group("dense_fwd_bwd");
    group.sample_size(30);

    let mut dense = Dense::<f32>::new(units);
    dense
        .build(&[inputs], &mut SeedSequence::new(Some(5)))
        .unwrap();
    let w: Array2<f32> = dense
        .kernel()
        .unwrap()
        .clone()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let x2 = x.clone().into_dimensionality::<Ix2>().unwrap();
    let dy2 = dy.clone().into_dimensionality::<Ix2>().unwrap();

    group.bench_function("ndarray_dot", |b| {
        b.iter(|| {
            let y = black_box(&x2).dot(&w);
            let dw = x2.t().dot(black_box(&dy2));
            let dx = dy2.dot(&w.t());
            black_box((y, dw, dx))
        })
    });
    let ctx = ForwardCtx::top(Phase::Train);
    group.bench_function("nncheck", |b| {
        b.iter(|| {
            let y = dense.forward(black_box(&x).clone(), ctx).unwrap();
            let dx = dense.backward(black_box(&dy).clone(), true).unwrap();
            black_box((y, dx))
        })
    });

    group.bench_function("ndarray_dot_2", |b| {
        b.iter(|| {
            let y = black_box(&x2).dot(&w);
            let dx = black_box(&dy2).dot(&w.t());
            black_box((y, dx))
        })
    });
    dense.set_trainable(false);
    group.bench_function("nncheck_frozen", |b| {
        b.iter(|| {
            let y = dense.forward(black_box(&x).clone(), ctx).unwrap();
            let dx = dense.backward(black_box(&dy).clone(), true).unwrap();
            black_box((y, dx))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_fit_step, bench_dense);
criterion_main!(benches);
