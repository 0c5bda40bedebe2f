//! The cases as proptest strategies (feature `proptest`, on by default): a case
//! is drawn by the very `generate` that `nncheck verify` uses, from a seed the
//! test runner draws, and a failing case shrinks part by part through
//! [`Simplify`], so a failure is reported at a small case (few axes of few
//! elements, a round rate, a short run) rather than at the large random one that
//! found it. A project's own property tests can use them too.
//!
//! ```
//! use nncheck::check::run::cases::DropoutCase;
//! use nncheck::check::run::strategy::cases;
//! use proptest::test_runner::TestRunner;
//! let mut runner = TestRunner::deterministic();
//! let found = runner.run(&cases::<DropoutCase>(), |case| {
//!     // A property that fails on any case with more than one unit.
//!     proptest::prop_assert!(case.shape.iter().product::<usize>() < 2);
//!     Ok(())
//! });
//! let minimal = match found {
//!     Err(proptest::test_runner::TestError::Fail(_, case)) => case,
//!     other => panic!("{other:?}"),
//! };
//! assert_eq!(minimal.shape.iter().product::<usize>(), 2);
//! ```

use super::cases::{DropoutCase, Simplify, TrainingCase};
use proptest::strategy::{NewTree, Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use rand::Rng;
use std::collections::VecDeque;
use std::marker::PhantomData;

/// A case type the strategies can draw: its generator.
pub trait Generate: Simplify + Clone + std::fmt::Debug {
    /// Draws one case from `seed`, as `nncheck verify` draws one from its
    /// stream ([`DropoutCase::generate`], [`TrainingCase::generate`]).
    fn from_seed(seed: u64) -> Self;
}

impl Generate for DropoutCase {
    fn from_seed(seed: u64) -> Self {
        DropoutCase::generate(&mut crate::rng::chacha(seed))
    }
}

impl Generate for TrainingCase {
    fn from_seed(seed: u64) -> Self {
        TrainingCase::generate(&mut crate::rng::chacha(seed))
    }
}

/// The strategy of case type `T`.
pub fn cases<T: Generate>() -> CaseStrategy<T> {
    CaseStrategy(PhantomData)
}

/// Draws cases of type `T` and shrinks them by [`Simplify`].
#[derive(Debug, Clone, Copy)]
pub struct CaseStrategy<T>(PhantomData<T>);

impl<T: Generate> Strategy for CaseStrategy<T> {
    type Tree = CaseTree<T>;
    type Value = T;
    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let case = T::from_seed(runner.rng().next_u64());
        Ok(CaseTree {
            current: case.clone(),
            accepted: case,
            candidates: VecDeque::new(),
        })
    }
}

/// A case being shrunk: the simplest failing case so far (`accepted`), the
/// candidate under test (`current`) and the candidates left to try.
#[derive(Debug, Clone)]
pub struct CaseTree<T> {
    current: T,
    accepted: T,
    candidates: VecDeque<T>,
}

impl<T: Simplify + Clone> CaseTree<T> {
    /// Moves to the next candidate; with none left, back to the accepted case.
    fn next_candidate(&mut self) -> bool {
        match self.candidates.pop_front() {
            Some(candidate) => {
                self.current = candidate;
                true
            }
            None => {
                self.current = self.accepted.clone();
                false
            }
        }
    }
}

impl<T: Generate> ValueTree for CaseTree<T> {
    type Value = T;
    fn current(&self) -> T {
        self.current.clone()
    }
    /// The current case failed: it is the simplest so far; try its simplifications.
    fn simplify(&mut self) -> bool {
        self.accepted = self.current.clone();
        self.candidates = self.accepted.simplifications().into();
        self.next_candidate()
    }
    /// The current candidate passed: try the next simplification of the
    /// accepted case instead.
    fn complicate(&mut self) -> bool {
        self.next_candidate()
    }
}
