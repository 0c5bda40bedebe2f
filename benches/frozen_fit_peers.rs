//! The frozen-base fit step of the same small model in every framework compiled
//! in, through the conformance API, so the README's performance table has
//! training peers and not only dropout peers.
//!
//! Each subject builds the conformance model (a base Dense(16) → BatchNorm →
//! ReLU → Dropout(0.5) → Dense(8) under a Dense(1) head, AdamW), freezes the base
//! and takes one optimizer step on a batch of 64; `frozen_fit_step/nncheck` is
//! the baseline the others are divided by. The model is small on purpose: it is
//! the one every check runs, so the figure is each framework's per-step
//! overhead (graph, dispatch, optimizer bookkeeping and the conversion of the
//! batch to its tensor type), not its matrix-product speed.
//!
//! Single thread: the bench sets `RAYON_NUM_THREADS=1` before any pool starts.
//! Run: `cargo bench --bench frozen_fit_peers --features candle,burn`.

use criterion::{criterion_group, criterion_main, Criterion};
use nncheck::check::run::battery::model_spec;
use nncheck::check::subjects::model::Part;
use nncheck::check::training::harness::model_data;
use nncheck::conform::{compiled_subjects, Sweep};
use std::hint::black_box;

fn bench_frozen_fit_step(c: &mut Criterion) {
    // The scoreboard's AdamW case (weight decay 0.01).
    let case = &Sweep::scoreboard(1, 1e-9).training_cases()[1];
    let mut group = c.benchmark_group("frozen_fit_step");
    for subject in compiled_subjects().models {
        let spec = model_spec(case, &subject.capabilities());
        let (x, y) = model_data(spec.seed, 64);
        let mut model = subject.build(&spec).expect("the subject builds the model");
        model
            .set_trainable(Part::Base, false)
            .expect("the subject freezes the base");
        group.bench_function(subject.name(), |b| {
            b.iter(|| black_box(model.fit_step(black_box(&x), &y).expect("a step")))
        });
    }
    group.finish();
}

fn single_thread() -> Criterion {
    // Before any thread pool exists: the peers parallelise with rayon.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    Criterion::default()
}

criterion_group! {
    name = benches;
    config = single_thread();
    targets = bench_frozen_fit_step
}
criterion_main!(benches);
