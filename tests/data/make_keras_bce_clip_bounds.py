"""Makes keras_bce_clip_bounds.json: Keras 3's binary cross-entropy (from
probabilities) at exactly its clip bounds, for tests/keras_reference.rs.

Keras clips the probabilities to [epsilon, 1 - epsilon] with `ops.clip`; on JAX
that is `maximum` then `minimum`, whose gradient at a tie is split evenly, so a
prediction exactly at a bound gets half the gradient an interior one would get
(neither none nor all of it). Recorded in float32 (Keras' default dtype): the
predictions (both bounds, for both targets, one interior value and one clipped
value beyond each bound), the targets, the mean loss and its gradient.

Run: pip install keras jax jaxlib; KERAS_BACKEND=jax python make_keras_bce_clip_bounds.py
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402

assert keras.backend.backend() == "jax"

eps = keras.config.epsilon()
y_true = jnp.asarray([[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]], "float32")
y_pred = jnp.asarray([[eps, eps, 1 - eps, 1 - eps, 0.5, 0.0, 1.0]], "float32")


def loss(p):
    return keras.losses.binary_crossentropy(y_true, p).mean()


value, grad = jax.value_and_grad(loss)(y_pred)
print(json.dumps({
    "keras": keras.__version__,
    "jax": jax.__version__,
    "epsilon": eps,
    "y_true": [float(v) for v in y_true.ravel()],
    "y_pred": [float(v) for v in y_pred.ravel()],
    "value": float(value),
    "grad_wrt_y_pred": [float(v) for v in grad.ravel()],
}, indent=1))
