//! Dropout forward throughput against in-run baselines: a plain copy of the same
//! buffer and a naive dropout (one `rand` Bernoulli draw per element).
//! The README reports ratios to these baselines, not bare times.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::ArrayD;
use nncheck::{Dropout, Phase};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

/// The naive peer: one Bernoulli draw per element, on ndarray.
fn naive_dropout(x: &ArrayD<f32>, rate: f64, rng: &mut ChaCha8Rng) -> ArrayD<f32> {
    let scale = (1.0 / (1.0 - rate)) as f32;
    x.mapv(|v| {
        if rng.random_bool(rate) {
            0.0
        } else {
            v * scale
        }
    })
}

fn bench_dropout(c: &mut Criterion) {
    let mut group = c.benchmark_group("dropout_forward");
    group.sample_size(20);
    for &n in &[1usize << 20, 1 << 24] {
        let x = ArrayD::from_shape_fn(vec![n], |i| i[0] as f32 * 1e-3 + 1.0);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("copy", n), &x, |b, x| {
            b.iter(|| black_box(x.clone()))
        });
        for &rate in &[0.1, 0.5] {
            let mut layer = Dropout::<f32>::new(rate).unwrap().with_seed(1);
            group.bench_with_input(
                BenchmarkId::new(format!("nncheck_train_p{rate}"), n),
                &x,
                |b, x| b.iter(|| black_box(layer.apply(x.clone(), Phase::Train).unwrap())),
            );
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            group.bench_with_input(BenchmarkId::new(format!("naive_p{rate}"), n), &x, |b, x| {
                b.iter(|| black_box(naive_dropout(x, rate, &mut rng)))
            });
        }
        let mut layer = Dropout::<f32>::new(0.5).unwrap();
        group.bench_with_input(BenchmarkId::new("nncheck_eval_view", n), &x, |b, x| {
            b.iter(|| black_box(layer.apply_view(x.view(), Phase::Eval).unwrap().len()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dropout);
criterion_main!(benches);
