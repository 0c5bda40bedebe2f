//! Heap traffic of one training step, measured with a counting allocator.
//!
//! Invariant served (SPEC §3, the speed requirement): the fit loop allocates per step only what the batch
//! needs and nothing that grows with the number of steps (no leak, no history kept
//! per step); a train-phase dropout forward and backward allocate nothing per
//! element (the kernel works in place and
//! backward recomputes the mask): only shape bookkeeping. Run with `--nocapture` to see the figures.

use ndarray::ArrayD;
use nncheck::optim::Adam;
use nncheck::phase::ForwardCtx;
use nncheck::{Dense, Dropout, Functional, Layer, Loss, Model, Phase, ReLU, Sequential};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts, per thread, the allocations of threads that switched counting on.
/// The counters are thread-local too: the tests of this file run in parallel,
/// and one test's allocations must not show up in another's figures.
struct Counting;

/// Allocations, bytes, and allocations under 256 bytes (shapes, names, boxed
/// iterators) made by this thread while counting was on.
#[derive(Clone, Copy, Default)]
struct Counts {
    allocs: u64,
    bytes: u64,
    small: u64,
}

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNTS: Cell<Counts> = const { Cell::new(Counts { allocs: 0, bytes: 0, small: 0 }) };
}

fn count(size: usize) {
    if ON.with(Cell::get) {
        COUNTS.with(|c| {
            let mut n = c.get();
            n.allocs += 1;
            n.bytes += size as u64;
            n.small += u64::from(size < 256);
            c.set(n);
        });
    }
}

// SAFETY: forwards to the system allocator; only counts on the side, in
// const-initialised thread-locals that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counters of this thread.
fn counts() -> Counts {
    COUNTS.with(Cell::get)
}

/// (allocations, bytes) made by `f` on this thread.
fn counted<T>(f: impl FnOnce() -> T) -> (u64, u64, T) {
    let before = counts();
    ON.with(|on| on.set(true));
    let out = f();
    ON.with(|on| on.set(false));
    let after = counts();
    (
        after.allocs - before.allocs,
        after.bytes - before.bytes,
        out,
    )
}

fn model(frozen_base: bool) -> Model<f32> {
    let mut base = Sequential::<f32>::new("base")
        .add(Dense::new(64))
        .add(ReLU::new())
        .add(Dropout::new(0.5).unwrap())
        .add(Dense::new(64))
        .build(&[32], Some(1))
        .unwrap();
    if frozen_base {
        base.freeze();
    }
    let mut m = Sequential::<f32>::new("m")
        .add(base)
        .add(Dense::new(4))
        .build(&[32], Some(2))
        .unwrap();
    m.compile(Adam::new(1e-3), Loss::MeanSquaredError).unwrap();
    m
}

#[test]
fn a_training_step_allocates_the_same_at_step_10_and_step_1000() {
    let batch = 50;
    let x = ArrayD::from_shape_fn(vec![batch, 32], |i| (i[0] + i[1]) as f32 / 80.0);
    let y = ArrayD::from_shape_fn(vec![batch, 4], |i| (i[0] % 2) as f32);
    let batch_bytes = (x.len() + y.len()) * 4;
    for frozen in [false, true] {
        let mut m = model(frozen);
        for _ in 0..10 {
            m.train_on_batch(&x, &y).unwrap();
        }
        let (early_allocs, early_bytes, _) = counted(|| m.train_on_batch(&x, &y).unwrap());
        for _ in 0..1000 {
            m.train_on_batch(&x, &y).unwrap();
        }
        let small = counts().small;
        let (late_allocs, late_bytes, _) = counted(|| m.train_on_batch(&x, &y).unwrap());
        let small = counts().small - small;
        println!(
            "frozen base: {frozen}: one train_on_batch step: {late_allocs} allocations \
             ({small} under 256 bytes), {late_bytes} bytes (batch x+y = {batch_bytes} bytes)"
        );
        assert_eq!(
            early_allocs, late_allocs,
            "allocation count grows with steps"
        );
        assert_eq!(early_bytes, late_bytes, "allocated bytes grow with steps");
    }
}

#[test]
fn train_phase_dropout_allocates_nothing_per_element() {
    let mut seen = Vec::new();
    for rows in [64, 6400] {
        let mut d = Dropout::<f32>::new(0.3).unwrap().with_seed(1);
        let x = ArrayD::from_elem(vec![rows, 100], 1.0f32);
        let (fa, fb, y) = counted(|| d.apply(x, Phase::Train).unwrap());
        let dy = ArrayD::from_elem(vec![rows, 100], 1.0f32);
        let (ba, bb, _) = counted(|| d.backward(dy, true).unwrap());
        println!(
            "dropout on {} f32: forward {fa} allocations / {fb} bytes, \
             backward {ba} allocations / {bb} bytes",
            y.len()
        );
        seen.push((fa, fb, ba, bb));
    }
    // Only shape bookkeeping: the same few bytes at 6,400 and 640,000 elements.
    assert_eq!(seen[0], seen[1]);
    assert!(seen[0].1 + seen[0].3 < 256, "{seen:?}");
}

#[test]
fn a_functional_model_moves_each_value_to_its_last_reader() {
    // A value read once is moved along the graph, not copied: an eval-phase pass
    // through identity layers costs the same few bytes at any batch size.
    let mut seen = Vec::new();
    for rows in [64, 6400] {
        let mut g = Functional::<f32>::new("g", Some(1));
        let input = g.input(&[100]).unwrap();
        let first = g.apply(Dropout::new(0.5).unwrap(), input).unwrap();
        let second = g.apply(Dropout::new(0.5).unwrap(), first).unwrap();
        let mut m = g.build(second).unwrap();
        let x = ArrayD::from_elem(vec![rows, 100], 1.0f32);
        let (allocs, bytes, _) =
            counted(|| Layer::forward(&mut m, x, ForwardCtx::top(Phase::Eval)).unwrap());
        println!("functional eval pass on {rows} x 100 f32: {allocs} allocations / {bytes} bytes");
        seen.push((allocs, bytes));
    }
    assert_eq!(seen[0], seen[1]);
    assert!(seen[0].1 < 1024, "{seen:?}");
}
