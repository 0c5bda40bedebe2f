//! nncheck's noise layers against what Keras 3 (JAX backend) does
//! deterministically, as recorded by `tests/data/make_keras_noise_layers.py`:
//! AlphaDropout's constants and its output for a fixed mask, SpatialDropout's
//! noise shapes, and eval identity.

use ndarray::ArrayD;
use nncheck::layers::alpha_dropout::affine;
use nncheck::layers::spatial_dropout::spatial_noise_shape;
use nncheck::phase::ForwardCtx;
use nncheck::tensor::bits_equal;
use nncheck::{
    AlphaDropout, DataFormat, GaussianDropout, GaussianNoise, Layer, Phase, SpatialDropout,
};
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keras_noise_layers.json"
    ))
    .expect("reference file present");
    serde_json::from_str(&text).expect("valid JSON")
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    u64s(v)
        .into_iter()
        .map(|b| f32::from_bits(b as u32))
        .collect()
}

#[test]
fn alpha_dropout_constants_match_keras_bit_for_bit() {
    let data = reference();
    for case in data["alpha_dropout"].as_array().unwrap() {
        let rate = case["rate"].as_f64().unwrap();
        let (a, b, alpha_p) = affine(rate);
        assert_eq!(a.to_bits(), case["a_bits"].as_u64().unwrap(), "a at {rate}");
        assert_eq!(b.to_bits(), case["b_bits"].as_u64().unwrap(), "b at {rate}");
        assert_eq!(
            alpha_p.to_bits(),
            case["alpha_p_bits"].as_u64().unwrap(),
            "alpha_p at {rate}"
        );
    }
}

/// nncheck's own forward, not the formula again: the layer runs in `Train` under
/// several seeds, and wherever its mask agrees with the one Keras was fed, its
/// output must have Keras' bits (kept and dropped units alike). A forward that
/// fused the multiply-add, or rounded the constants differently, fails here.
#[test]
fn alpha_dropout_fixed_mask_output_matches_keras_bit_for_bit() {
    let data = reference();
    for case in data["alpha_dropout"].as_array().unwrap() {
        let rate = case["rate"].as_f64().unwrap();
        let keep: Vec<bool> = case["keep"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_bool().unwrap())
            .collect();
        let x = f32s(&case["x_bits"]);
        let want = f32s(&case["y_bits"]);
        let input = ArrayD::from_shape_vec(vec![x.len()], x.clone()).unwrap();
        let (mut kept, mut dropped) = (0usize, 0usize);
        for seed in 0..16u64 {
            let mut layer = AlphaDropout::<f32>::new(rate).unwrap().with_seed(seed);
            let dropped_bits = layer.dropped_value().to_bits();
            let y = layer
                .forward(input.clone(), ForwardCtx::top(Phase::Train))
                .unwrap();
            for (i, (&got, &keras_keep)) in y.iter().zip(&keep).enumerate() {
                let ours_keep = got.to_bits() != dropped_bits;
                if ours_keep != keras_keep {
                    continue;
                }
                assert_eq!(
                    got.to_bits(),
                    want[i].to_bits(),
                    "rate {rate}, seed {seed}, x {}, kept {keras_keep}: nncheck {got} vs Keras {}",
                    x[i],
                    want[i]
                );
                if keras_keep {
                    kept += 1;
                } else {
                    dropped += 1;
                }
            }
        }
        assert!(kept > 0, "rate {rate}: no kept unit compared");
        let some_dropped = keep.iter().any(|k| !k);
        assert!(
            !some_dropped || dropped > 0,
            "rate {rate}: no dropped unit compared"
        );
    }
}

#[test]
fn spatial_noise_shapes_match_keras() {
    let data = reference();
    for case in data["spatial_dropout"].as_array().unwrap() {
        let shape: Vec<usize> = u64s(&case["input_shape"])
            .into_iter()
            .map(|v| v as usize)
            .collect();
        let format = match case["data_format"].as_str().unwrap() {
            "channels_last" => DataFormat::ChannelsLast,
            _ => DataFormat::ChannelsFirst,
        };
        let resolved: Vec<u64> = spatial_noise_shape(shape.len() - 2, format)
            .iter()
            .zip(&shape)
            .map(|(n, &s)| n.unwrap_or(s) as u64)
            .collect();
        assert_eq!(resolved, u64s(&case["noise_shape"]), "{case}");
        // And the layer itself takes that shape: its draws per call are the cells.
        let mut layer = SpatialDropout::<f32>::new(shape.len() - 2, 0.5, format)
            .unwrap()
            .with_seed(1);
        layer
            .forward(ArrayD::ones(shape.clone()), ForwardCtx::top(Phase::Train))
            .unwrap();
        let cells: u64 = resolved.iter().product();
        assert_eq!(layer.stochastic().unwrap().noise_stats().draws, cells);
    }
}

#[test]
fn eval_identity_matches_keras() {
    let data = reference();
    for case in data["eval_identity"].as_array().unwrap() {
        assert!(case["identical"].as_bool().unwrap(), "Keras: {case}");
        let x = ArrayD::from_shape_vec(vec![1, 2, 2, 4], f32s(&case["x_bits"])).unwrap();
        let want = ArrayD::from_shape_vec(vec![1, 2, 2, 4], f32s(&case["y_bits"])).unwrap();
        let mut layer: Box<dyn Layer<f32>> = match case["layer"].as_str().unwrap() {
            "GaussianNoise" => Box::new(GaussianNoise::new(0.5).unwrap()),
            "GaussianDropout" => Box::new(GaussianDropout::new(0.3).unwrap()),
            "AlphaDropout" => Box::new(AlphaDropout::new(0.2).unwrap()),
            "SpatialDropout2D" => {
                Box::new(SpatialDropout::new_2d(0.4, DataFormat::ChannelsLast).unwrap())
            }
            other => panic!("unknown layer {other}"),
        };
        let y = layer.forward(x, ForwardCtx::top(Phase::Eval)).unwrap();
        assert!(bits_equal(&y, &want), "{}", case["layer"]);
    }
}
