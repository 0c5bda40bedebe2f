//! Dropout forward throughput against in-run baselines, so the README can report
//! ratios rather than bare times (the goal: train forward at 0.6 of a plain copy or better).
//!
//! Each measured call is paired with the baseline that does the same memory work:
//! - `copy_into` (copy `x` into a preallocated buffer) is the baseline of
//!   `kernel_into_p*` (the kernel writing `x`'s dropout into a preallocated buffer:
//!   a random byte per element at p = 0.1, a random bit at p = 0.5) and of
//!   `keystream_into` (the byte path's random bytes alone, one per element: the
//!   floor of that path's cost, whatever the select);
//! - `clone` (a fresh allocation and copy) is the baseline of `layer_train_p*`
//!   (`Dropout::apply(x.clone(), Train)`: the clone, then the kernel in place), of
//!   `naive_p*` (one `rand` Bernoulli draw per element, on ndarray, allocating) and,
//!   with `--features candle`, of `candle_nn_p*` (candle-nn's `Dropout`, allocating);
//! - `eval_view` and `rate0_view` (`apply_view` in `Eval` and at rate 0) return the
//!   input borrowed: constant time whatever the size.
//!
//! Single thread throughout (the `rayon` feature is not used here).
//! Run: `cargo bench --bench dropout` (add `--features candle` for the peer).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::ArrayD;
use nncheck::layers::dropout::drop_threshold;
use nncheck::layers::dropout_kernel::DropoutKernel;
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
        let xs = x.as_slice().expect("standard layout");
        let mut out = vec![0.0f32; n];
        group.throughput(Throughput::Elements(n as u64));

        group.bench_function(BenchmarkId::new("copy_into", n), |b| {
            b.iter(|| {
                out.copy_from_slice(black_box(xs));
                black_box(&mut out);
            })
        });
        let mut bytes = vec![0u8; n];
        let mut call = 0u64;
        group.bench_function(BenchmarkId::new("keystream_into", n), |b| {
            b.iter(|| {
                call += 1;
                // The rate does not change the bytes; any will do.
                let kernel = DropoutKernel::new(1, call, drop_threshold(0.5));
                kernel.primary_bytes_into(&mut bytes);
                black_box(&mut bytes);
            })
        });
        for &rate in &[0.1, 0.5] {
            let threshold = drop_threshold(rate);
            let scale = (1.0 / (1.0 - rate)) as f32;
            let mut call = 0u64;
            group.bench_function(BenchmarkId::new(format!("kernel_into_p{rate}"), n), |b| {
                b.iter(|| {
                    call += 1;
                    let kernel = DropoutKernel::new(1, call, threshold);
                    black_box(kernel.forward_into(black_box(xs), &mut out, scale).unwrap());
                })
            });
        }

        group.bench_function(BenchmarkId::new("clone", n), |b| {
            b.iter(|| black_box(black_box(&x).clone()))
        });
        for &rate in &[0.1, 0.5] {
            let mut layer = Dropout::<f32>::new(rate).unwrap().with_seed(1);
            group.bench_function(BenchmarkId::new(format!("layer_train_p{rate}"), n), |b| {
                b.iter(|| black_box(layer.apply(black_box(&x).clone(), Phase::Train).unwrap()))
            });
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            group.bench_function(BenchmarkId::new(format!("naive_p{rate}"), n), |b| {
                b.iter(|| black_box(naive_dropout(black_box(&x), rate, &mut rng)))
            });
            #[cfg(feature = "candle")]
            {
                let t = candle_core::Tensor::from_slice(xs, n, &candle_core::Device::Cpu).unwrap();
                let d = candle_nn::Dropout::new(rate as f32);
                group.bench_function(BenchmarkId::new(format!("candle_nn_p{rate}"), n), |b| {
                    b.iter(|| black_box(d.forward(black_box(&t), true).unwrap()))
                });
            }
        }

        let mut eval = Dropout::<f32>::new(0.5).unwrap().with_seed(1);
        let mut rate0 = Dropout::<f32>::new(0.0).unwrap().with_seed(1);
        assert!(eval.apply_view(x.view(), Phase::Eval).unwrap().is_view());
        assert!(rate0.apply_view(x.view(), Phase::Train).unwrap().is_view());
        group.bench_function(BenchmarkId::new("eval_view", n), |b| {
            b.iter(|| {
                black_box(
                    eval.apply_view(black_box(x.view()), Phase::Eval)
                        .unwrap()
                        .len(),
                )
            })
        });
        group.bench_function(BenchmarkId::new("rate0_view", n), |b| {
            b.iter(|| {
                black_box(
                    rate0
                        .apply_view(black_box(x.view()), Phase::Train)
                        .unwrap()
                        .len(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dropout);
criterion_main!(benches);
