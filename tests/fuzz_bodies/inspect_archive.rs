//! Fuzz target `inspect_archive`: `nncheck inspect` on arbitrary bytes.
//!
//! The first byte chooses what the rest is: a whole `.keras` archive (zip,
//! JSON and HDF5 inside), or the text of a `config.json` alone. Invariant
//! served: bad input gets a typed error naming the file, never a panic (SPEC
//! §7); a file that reads is described without a panic, every weight it
//! reports is a dataset of its archive, and no two weights share a path.

use nncheck::inspect::{archive, config, describe, inspect_bytes};
use std::path::Path;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = Path::new("fuzz.keras");
    if mode % 2 == 0 {
        if let Ok(inspection) = inspect_bytes(rest, file) {
            inspection.render();
            let weights = archive::read_archive_bytes(rest, file)
                .expect("an archive that inspects also reads")
                .weights;
            let mut paths = std::collections::HashSet::new();
            for w in &inspection.weights {
                assert!(
                    weights.dataset(&w.h5_dataset).is_some(),
                    "{} is not in the archive",
                    w.h5_dataset
                );
                assert!(paths.insert(&w.path), "two weights at {}", w.path);
            }
        }
        return;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    if let Ok(model) = config::parse_model(file, "3.15.1", &json) {
        describe::layer_reports(&model);
    }
}
