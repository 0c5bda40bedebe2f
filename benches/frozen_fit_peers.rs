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
//! Keras 3 (compiled `train_on_batch`) and PyTorch (an eager loop) are timed
//! in their own terms: Python's clock around their own steps
//! (`time_fit_step` in the subject modules), reported to criterion through
//! `iter_custom`, so the bridge's crossing is not in their figures.
//!
//! Single thread where the framework lets one choose: the bench sets
//! `RAYON_NUM_THREADS=1` and `OMP_NUM_THREADS=1` before any pool starts (XLA's
//! CPU client keeps its own pool).
//! Run: `cargo bench --bench frozen_fit_peers --features candle,burn,keras,torch`.

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
        if timed_in_python(&subject.name()) {
            continue;
        }
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
    python_peers(&mut group, case);
    group.finish();
}

/// Whether `subject` is one of the Python frameworks' models, which
/// [`python_peers`] times in Python instead.
fn timed_in_python(subject: &str) -> bool {
    let frameworks: [Option<String>; 2] = [
        #[cfg(feature = "keras")]
        Some(nncheck::conform::keras::name()),
        #[cfg(not(feature = "keras"))]
        None,
        #[cfg(feature = "torch")]
        Some(nncheck::conform::torch::name()),
        #[cfg(not(feature = "torch"))]
        None,
    ];
    frameworks
        .iter()
        .flatten()
        .any(|f| subject.starts_with(f.as_str()))
}

/// The Keras and PyTorch frozen-base steps, timed by Python's clock around the
/// framework's own step; a framework whose environment is not made is skipped
/// by name.
#[cfg(feature = "python")]
fn python_peers(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &nncheck::check::run::cases::TrainingCase,
) {
    use nncheck::check::subjects::{ModelSpec, ModelSubject};
    use nncheck::conform::python::model::{time_fit_step, PyModelSubject};
    use std::time::Duration;
    #[allow(unused_mut)]
    let mut peers: Vec<PyModelSubject> = Vec::new();
    #[cfg(feature = "keras")]
    {
        use nncheck::conform::keras::{keras_model, KerasVariant};
        peers.push(keras_model(KerasVariant::TrainableFalse));
    }
    #[cfg(feature = "torch")]
    {
        use nncheck::conform::torch::{torch_model, TorchVariant};
        peers.push(torch_model(TorchVariant::RequiresGrad));
        peers.push(torch_model(TorchVariant::RequiresGradEval));
    }
    // Each sample builds and compiles a fresh model: ten are enough.
    group.sample_size(10);
    for subject in peers {
        let (env, variant) = (subject.environment(), subject.python_variant());
        if let Err(why) = env.ready() {
            println!("SKIPPED frozen_fit_step/{}: {why}", subject.name());
            continue;
        }
        let spec: ModelSpec = model_spec(case, &subject.capabilities());
        let (x, y) = model_data(spec.seed, 64);
        let name = subject.name();
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let seconds = time_fit_step(env, &name, &spec, variant, (&x, &y), iters as usize)
                    .expect("the framework times its steps");
                Duration::from_secs_f64(seconds * iters as f64)
            })
        });
    }
}

/// Built without the Python bridge: no Python peers to time.
#[cfg(not(feature = "python"))]
fn python_peers(
    _: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    _: &nncheck::check::run::cases::TrainingCase,
) {
}

fn single_thread() -> Criterion {
    // Before any thread pool exists: the peers parallelise with rayon.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("OMP_NUM_THREADS", "1");
    Criterion::default()
}

criterion_group! {
    name = benches;
    config = single_thread();
    targets = bench_frozen_fit_step
}
criterion_main!(benches);
