//! Fuzz target `inspect_archive`: `nncheck inspect` on arbitrary bytes.
//!
//! The first byte chooses what the rest is: a whole `.keras` archive (zip,
//! JSON and HDF5 inside), or the text of a `config.json` alone. Invariant
//! served: bad input gets a typed error naming the file, never a panic (SPEC
//! §7); a file that reads is described, layer by layer, without a panic, and
//! its report names every layer the config holds.

use nncheck::inspect::{config, describe, inspect_bytes};
use std::path::Path;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = Path::new("fuzz.keras");
    if mode % 2 == 0 {
        if let Ok(inspection) = inspect_bytes(rest, file) {
            let text = inspection.render();
            for layer in &inspection.layers {
                assert!(
                    text.contains(&layer.path),
                    "the report omits {}",
                    layer.path
                );
            }
        }
        return;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    if let Ok(model) = config::parse_model(file, "3.15.1", &json) {
        let reports = describe::layer_reports(&model);
        assert_eq!(reports.len() + 1, model.root.walk().len());
    }
}
