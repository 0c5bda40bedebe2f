//! Running the checks: the cases they run on ([`cases`]), the batteries that
//! run lists of checks on a subject at a case ([`battery`]), `nncheck verify`
//! over generated cases ([`verify`]), the sweeps of a conformance run
//! ([`sweep`]), the expectations a project gates its CI with ([`expect`]), and
//! the invariant table generated from the batteries ([`table`]).
//!
//! Boundary: this module decides what runs on what, and whether its verdicts
//! were the expected ones; it judges nothing itself.

pub mod battery;
pub mod cases;
pub mod expect;
#[cfg(feature = "proptest")]
pub mod strategy;
pub mod sweep;
pub mod table;
pub mod verify;

pub use sweep::{OptimizerCase, Sweep};
