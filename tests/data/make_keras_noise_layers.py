"""Makes keras_noise_layers.json: what Keras 3 (JAX backend) does that is
deterministic in its noise layers, for tests/keras_noise_layers.rs.

Recorded: AlphaDropout's constants a, b, alpha_p for several rates, and its
train-phase float32 output for a FIXED mask, obtained by running Keras' own
AlphaDropout.call with its uniform draw replaced by chosen values (so Keras'
formula code runs unchanged on a known mask); the noise shape each
SpatialDropout variant asks for, per data format; and eval identity of every
noise layer on special values (NaN payloads, -0.0, infinities, subnormals).

Run: pip install keras jax jaxlib; KERAS_BACKEND=jax python make_keras_noise_layers.py
"""

import json
import os
import struct

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.layers.regularization import alpha_dropout as alpha_module  # noqa: E402

assert keras.backend.backend() == "jax"

RATES = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
SPECIAL_F32_BITS = [
    0x7FC00000, 0xFFC00001, 0x7FA5A5A5, 0xFF800001, 0x00000000, 0x80000000,
    0x7F800000, 0xFF800000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000,
    0x7F7FFFFF, 0x3F800000, 0xBFC00000, 0x40490FDB,
]


def f32_bits(a):
    return [int(v) for v in np.asarray(a, dtype=np.float32).view(np.uint32).ravel()]


def f64_bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def alpha_constants(rate):
    # The expressions of AlphaDropout.call, verbatim.
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    alpha_p = -alpha * scale
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    return a, b, alpha_p


def alpha_fixed_mask(rate, x, keep):
    """Keras' AlphaDropout.call on x with the uniform draw fixed: 1.0 - 2^-24
    (>= rate: kept) where keep, 0.0 (< rate: dropped) elsewhere."""
    uniform = np.where(keep, np.float32(1.0 - 2.0**-24), np.float32(0.0))
    original = alpha_module.ops.random.uniform
    alpha_module.ops.random.uniform = lambda shape, seed=None: jax.numpy.asarray(
        uniform.reshape(tuple(shape))
    )
    try:
        layer = keras.layers.AlphaDropout(rate, seed=1)
        y = layer(x, training=True)
    finally:
        alpha_module.ops.random.uniform = original
    return np.asarray(y)


def main():
    x = np.array(
        [[-3.0, -1.5, -0.0, 0.0, 0.25, 1.0, 2.5, 7.0, -0.1, 0.3, 1e-3, -100.0]],
        dtype=np.float32,
    )
    keep = np.array([[i % 3 != 1 for i in range(x.size)]])
    alpha = []
    for rate in RATES:
        a, b, alpha_p = alpha_constants(rate)
        y = alpha_fixed_mask(rate, x, keep)
        alpha.append(
            {
                "rate": rate,
                "a": a,
                "b": b,
                "alpha_p": alpha_p,
                "a_bits": f64_bits(a),
                "b_bits": f64_bits(b),
                "alpha_p_bits": f64_bits(alpha_p),
                "keep": [bool(k) for k in keep.ravel()],
                "x_bits": f32_bits(x),
                "y_bits": f32_bits(y),
            }
        )

    spatial = []
    cases = [
        ("SpatialDropout1D", None, (2, 5, 3)),
        ("SpatialDropout2D", "channels_last", (2, 4, 5, 3)),
        ("SpatialDropout2D", "channels_first", (2, 3, 4, 5)),
        ("SpatialDropout3D", "channels_last", (2, 4, 5, 6, 3)),
        ("SpatialDropout3D", "channels_first", (2, 3, 4, 5, 6)),
    ]
    for cls, fmt, shape in cases:
        kwargs = {} if fmt is None else {"data_format": fmt}
        layer = getattr(keras.layers, cls)(0.5, **kwargs)
        noise = layer._get_noise_shape(np.zeros(shape, dtype=np.float32))
        spatial.append(
            {
                "layer": cls,
                "data_format": fmt or "channels_last",
                "input_shape": list(shape),
                "noise_shape": [int(v) for v in noise],
            }
        )

    special = np.array(SPECIAL_F32_BITS, dtype=np.uint32).view(np.float32).reshape(1, 2, 2, 4)
    eval_identity = []
    for name, layer in [
        ("GaussianNoise", keras.layers.GaussianNoise(0.5, seed=1)),
        ("GaussianDropout", keras.layers.GaussianDropout(0.3, seed=1)),
        ("AlphaDropout", keras.layers.AlphaDropout(0.2, seed=1)),
        ("SpatialDropout2D", keras.layers.SpatialDropout2D(0.4, seed=1)),
    ]:
        y = np.asarray(layer(special, training=False))
        eval_identity.append(
            {
                "layer": name,
                "x_bits": f32_bits(special),
                "y_bits": f32_bits(y),
                "identical": f32_bits(y) == f32_bits(special),
            }
        )

    out = {
        "keras": keras.__version__,
        "jax": jax.__version__,
        "backend": keras.backend.backend(),
        "alpha_dropout": alpha,
        "spatial_dropout": spatial,
        "eval_identity": eval_identity,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "keras_noise_layers.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
