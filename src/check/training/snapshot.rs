//! One picture of everything training may change in a model, for bit-exact
//! before/after comparisons.
//!
//! Serves SPEC §3 (a frozen layer's weights, BatchNorm statistics and optimizer
//! slots never move), §4 (dropout counts only `Train` calls) and §7 (a rejected
//! call changes nothing). Comparisons are of bits, never of values: `PartialEq`
//! calls two NaN weights different and `0.0` equal to `-0.0`, and either would let
//! a moved weight pass or an unmoved one fail.

use crate::layer::{join_path, Layer};
use crate::model::Model;
use crate::optim::SlotState;
use crate::stochastic::NoiseStats;
use crate::tensor::Element;
use ndarray::ArrayD;
use std::fmt;

/// Every weight (parameters and state such as BatchNorm statistics), every
/// optimizer slot record and every noise layer's counters of a model, or of the
/// part of it under one path, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSnapshot<F: Element = f32> {
    /// `(layer path/weight name, value)` in model (`get_weights`) order.
    pub weights: Vec<(String, ArrayD<F>)>,
    /// `optimizer_state()`: `(weight path, slots)`, parameters only.
    pub optimizer: Vec<(String, Option<SlotState<F>>)>,
    /// `noise_stats()`: `(layer path, counters)` of every noise layer.
    pub counters: Vec<(String, NoiseStats)>,
}

impl<F: Element> ModelSnapshot<F> {
    /// The whole model.
    pub fn of(model: &Model<F>) -> Self {
        Self::of_subtree(model, "")
    }

    /// The part of `model` whose paths start with `prefix` (`""` for all of it).
    pub fn of_subtree(model: &Model<F>, prefix: &str) -> Self {
        let mut weights = Vec::new();
        model.visit_weights("", true, &mut |path, w, _| {
            weights.push((join_path(path, w.name), w.value.clone()));
        });
        ModelSnapshot {
            weights,
            optimizer: model.optimizer_state(),
            counters: model.noise_stats(),
        }
        .subtree(prefix)
    }

    /// The entries whose paths start with `prefix`, so that one snapshot of a
    /// model serves the checks of each of its parts.
    pub fn subtree(mut self, prefix: &str) -> Self {
        // Whole path segments: `model/base` must not take `model/base_1/...`.
        let under = |p: &str| {
            prefix.is_empty()
                || p == prefix
                || p.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        self.weights.retain(|(p, _)| under(p));
        self.optimizer.retain(|(p, _)| under(p));
        self.counters.retain(|(p, _)| under(p));
        self
    }

    /// Weight scalars in the snapshot.
    pub fn scalars(&self) -> usize {
        self.weights.iter().map(|(_, w)| w.len()).sum()
    }

    /// Units seen and units dropped, summed over the noise layers in the snapshot.
    pub fn units_seen_and_dropped(&self) -> (u64, u64) {
        self.counters.iter().fold((0, 0), |(s, d), (_, c)| {
            (s + c.units_seen, d + c.units_dropped)
        })
    }

    /// What differs between this snapshot and `later`, entry by entry.
    pub fn diff(&self, later: &Self) -> SnapshotDiff {
        // Paths need not be unique (two graph nodes may share a name), so an
        // entry is matched with the one at its own position when the paths
        // agree there, and looked up by path only when the lists differ.
        let counterpart = |i: usize, path: &String| match later.weights.get(i) {
            Some((p, b)) if p == path => Some(b),
            _ => later
                .weights
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, b)| b),
        };
        let weights = self
            .weights
            .iter()
            .enumerate()
            .filter_map(|(i, (path, a))| {
                let moved = match counterpart(i, path) {
                    Some(b) if a.shape() == b.shape() => a
                        .iter()
                        .zip(b.iter())
                        .filter(|(x, y)| x.to_bits_u64() != y.to_bits_u64())
                        .count(),
                    // Gone or reshaped: every scalar it had moved.
                    _ => a.len(),
                };
                (moved > 0).then(|| (path.clone(), moved))
            })
            .chain(
                later
                    .weights
                    .iter()
                    .filter(|(p, _)| !self.weights.iter().any(|(q, _)| q == p))
                    .map(|(p, b)| (p.clone(), b.len())),
            )
            .collect();
        SnapshotDiff {
            weights,
            slots: changed_paths(&self.optimizer, &later.optimizer, |a, b| {
                SlotState::bits_equal(a.as_ref(), b.as_ref())
            }),
            counters: changed_paths(&self.counters, &later.counters, |a, b| a == b),
        }
    }

    /// True when nothing differs from `other`: weights, slots and step counts,
    /// counters, and the paths they are recorded under.
    pub fn bits_equal(&self, other: &Self) -> bool {
        self.diff(other).is_empty()
    }
}

/// The paths whose records differ (or exist on one side only), in order.
fn changed_paths<T>(
    before: &[(String, T)],
    after: &[(String, T)],
    same: impl Fn(&T, &T) -> bool,
) -> Vec<String> {
    let mut changed: Vec<String> = before
        .iter()
        .enumerate()
        .filter(|(i, (path, a))| {
            let b = match after.get(*i) {
                Some((p, b)) if p == path => Some(b),
                _ => after.iter().find(|(p, _)| p == path).map(|(_, b)| b),
            };
            b.is_none_or(|b| !same(a, b))
        })
        .map(|(_, entry)| entry)
        .map(|(p, _)| p.clone())
        .collect();
    changed.extend(
        after
            .iter()
            .filter(|(p, _)| !before.iter().any(|(q, _)| q == p))
            .map(|(p, _)| p.clone()),
    );
    changed
}

/// Which scalars, slot records and counters moved between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotDiff {
    /// `(weight path, scalars that differ in bits)`, for each weight that moved; a
    /// weight on one side only, or reshaped, counts all its scalars.
    pub weights: Vec<(String, usize)>,
    /// Weight paths whose optimizer record (slots or step count) differs.
    pub slots: Vec<String>,
    /// Noise-layer paths whose counters differ.
    pub counters: Vec<String>,
}

impl SnapshotDiff {
    /// Weight scalars that moved.
    pub fn moved_scalars(&self) -> usize {
        self.weights.iter().map(|(_, n)| n).sum()
    }

    /// True when no weight and no optimizer record moved, whatever the counters
    /// did: they legitimately move where a dropout pinned to `Train` runs in
    /// `predict`, or where a step fails after its forward pass.
    pub fn weights_and_slots_unchanged(&self) -> bool {
        self.weights.is_empty() && self.slots.is_empty()
    }

    /// True when nothing moved.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty() && self.slots.is_empty() && self.counters.is_empty()
    }
}

impl fmt::Display for SnapshotDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing moved");
        }
        let moved: Vec<String> = self
            .weights
            .iter()
            .map(|(p, n)| format!("{p} ({n} scalars)"))
            .collect();
        write!(
            f,
            "weights moved: {:?}; optimizer records changed: {:?}; counters changed: {:?}",
            moved, self.slots, self.counters
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sequential::Sequential;
    use crate::Dense;

    fn weights(entries: &[(&str, f32)]) -> ModelSnapshot<f32> {
        ModelSnapshot {
            weights: entries
                .iter()
                .map(|(p, v)| (p.to_string(), ndarray::ArrayD::from_elem(vec![1], *v)))
                .collect(),
            optimizer: Vec::new(),
            counters: Vec::new(),
        }
    }

    /// Entries are matched by path, position only breaking ties between equal
    /// paths: the same weights listed in another order are no change, and of
    /// two nodes that share a name, the one that moved is the one reported.
    #[test]
    fn entries_are_matched_by_path_not_by_position() {
        let before = weights(&[("m/a/kernel", 1.0), ("m/b/kernel", 2.0)]);
        let reordered = weights(&[("m/b/kernel", 2.0), ("m/a/kernel", 1.0)]);
        assert!(
            before.diff(&reordered).is_empty(),
            "{:?}",
            before.diff(&reordered)
        );
        let twins = weights(&[("m/x/kernel", 1.0), ("m/x/kernel", 2.0)]);
        let second_moved = weights(&[("m/x/kernel", 1.0), ("m/x/kernel", 3.0)]);
        assert_eq!(twins.diff(&second_moved).weights.len(), 1);
        assert!(twins.diff(&twins.clone()).is_empty());
        let grown = weights(&[
            ("m/a/kernel", 1.0),
            ("m/b/kernel", 2.0),
            ("m/c/kernel", 0.0),
        ]);
        assert_eq!(before.diff(&grown).weights, [("m/c/kernel".to_string(), 1)]);
    }

    #[test]
    fn counters_are_matched_by_path_not_by_position() {
        let stats = |units_seen| crate::stochastic::NoiseStats {
            units_seen,
            ..Default::default()
        };
        let snapshot = |counters: Vec<(&str, u64)>| ModelSnapshot::<f32> {
            weights: Vec::new(),
            optimizer: Vec::new(),
            counters: counters
                .into_iter()
                .map(|(p, n)| (p.to_string(), stats(n)))
                .collect(),
        };
        let before = snapshot(vec![("m/d1", 1), ("m/d2", 2)]);
        assert!(before
            .diff(&snapshot(vec![("m/d2", 2), ("m/d1", 1)]))
            .is_empty());
        let moved = before.diff(&snapshot(vec![("m/d2", 3), ("m/d1", 1)]));
        assert_eq!(moved.counters, ["m/d2"]);
    }

    #[test]
    fn a_moved_weight_alone_or_a_moved_slot_alone_is_a_change() {
        let mut model = Sequential::<f32>::new("m")
            .add(Dense::new(2))
            .build(&[3], Some(1))
            .unwrap();
        let before = ModelSnapshot::of(&model);
        assert!(before
            .diff(&ModelSnapshot::of(&model))
            .weights_and_slots_unchanged());
        model
            .set_weight("m/dense/bias", ndarray::ArrayD::from_elem(vec![2], 0.5))
            .unwrap();
        let diff = before.diff(&ModelSnapshot::of(&model));
        assert_eq!((diff.weights.len(), diff.slots.len()), (1, 0));
        assert!(!diff.weights_and_slots_unchanged() && !diff.is_empty());
        let slots_only = SnapshotDiff {
            weights: Vec::new(),
            slots: vec!["m/dense/bias".into()],
            counters: Vec::new(),
        };
        assert!(!slots_only.weights_and_slots_unchanged());
    }

    /// A weight whose shape changed moved in every scalar it had, even where
    /// the common prefix of its values is unchanged.
    #[test]
    fn a_reshaped_weight_moved_in_every_scalar() {
        let snapshot = |value: ndarray::ArrayD<f32>| ModelSnapshot {
            weights: vec![("m/a/kernel".to_string(), value)],
            optimizer: Vec::new(),
            counters: Vec::new(),
        };
        let before = snapshot(ndarray::ArrayD::from_elem(vec![2], 1.0));
        let grown = snapshot(ndarray::ArrayD::from_elem(vec![3], 1.0));
        assert_eq!(before.diff(&grown).weights, [("m/a/kernel".to_string(), 2)]);
    }

    /// `bits_equal` is what a caller outside the checks uses to ask "did
    /// anything change"; it must agree with the diff the checks read.
    #[test]
    fn bits_equal_is_an_empty_diff() {
        let before = weights(&[("m/a/kernel", 1.0)]);
        assert!(before.bits_equal(&before.clone()));
        assert!(!before.bits_equal(&weights(&[("m/a/kernel", -1.0)])));
        assert!(!before.bits_equal(&weights(&[("m/b/kernel", 1.0)])));
    }

    /// Records are paired by position first: with a path repeated (a foreign
    /// subject may name two weights alike), the second record is compared with
    /// the second, not with the first of that name.
    #[test]
    fn a_repeated_path_is_paired_by_position() {
        let before = [("a".to_string(), 1), ("a".to_string(), 1)];
        let after = [("a".to_string(), 1), ("a".to_string(), 2)];
        assert_eq!(changed_paths(&before, &after, |x, y| x == y), ["a"]);
        assert!(changed_paths(&before, &before, |x, y| x == y).is_empty());
    }

    /// A diff reads as what moved, or as nothing moved.
    #[test]
    fn a_diff_prints_what_moved() {
        assert_eq!(SnapshotDiff::default().to_string(), "nothing moved");
        let diff = SnapshotDiff {
            weights: vec![("m/dense/kernel".into(), 3)],
            slots: vec!["m/dense/kernel".into()],
            counters: vec![],
        };
        assert_eq!(
            diff.to_string(),
            "weights moved: [\"m/dense/kernel (3 scalars)\"]; \
             optimizer records changed: [\"m/dense/kernel\"]; counters changed: []"
        );
    }
}
