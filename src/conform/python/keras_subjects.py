"""Keras 3 conformance subjects for nncheck, on the JAX backend, CPU only.

The Rust adapter embeds this file (``include_str!``) and drives it through
pyo3: the invariants nncheck checks on its own core (frozen weights stay
bit-identical, dropout is active in training even inside a frozen model,
eval-phase dropout is the identity, ...) are run against real Keras layers
and a real compiled Keras model through the classes here:

* ``Dropout``     -- ``keras.layers.Dropout`` with forward, input gradient of
                     the last training call, its keep mask, and reseeding;
* ``NoiseLayer``  -- GaussianNoise, GaussianDropout, AlphaDropout and
                     SpatialDropout1D/2D/3D, forward and reseeding;
* ``Model``       -- nncheck's conformance model (base ``Sequential`` + head)
                     compiled and stepped with ``train_on_batch``;
* ``time_fit_step`` -- seconds per ``train_on_batch`` step of a frozen-base model.

Everything is float32. Arrays crossing the interface are C-contiguous numpy
arrays (float32, bool for masks), never JAX arrays. The environment is made by
``python/make-env.sh keras`` (Keras 3.15.1, JAX 0.10.2).
"""

import os

# The backend is chosen once, at the first `import keras` in the process.
os.environ.setdefault("KERAS_BACKEND", "jax")
# CPU only: results must not depend on whether a machine happens to have a GPU.
os.environ["JAX_PLATFORMS"] = "cpu"

import platform  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jaxlib  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

# Python floats must stay float32 inside JAX (Keras' dropout divides by a
# Python float); x64 mode would change that.
jax.config.update("jax_enable_x64", False)
jax.config.update("jax_platforms", "cpu")
keras.config.set_floatx("float32")

if keras.backend.backend() != "jax":
    raise ImportError(
        "keras_subjects needs the JAX backend, but Keras was loaded with "
        f"{keras.backend.backend()!r} (KERAS_BACKEND set, or keras imported "
        "before this module)"
    )

__all__ = ["versions", "Dropout", "NoiseLayer", "Model", "time_fit_step"]

_U32 = 0xFFFFFFFF


def versions():
    """The versions of everything that decides the numbers."""
    return {
        "keras": keras.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _f32(x):
    """A C-contiguous float32 numpy copy of `x` (numpy or JAX)."""
    return np.array(x, dtype=np.float32, order="C", copy=True)


def _reseed_layer(layer, seed):
    """Restarts a Keras noise layer's mask stream at `seed`.

    Keras keeps the stream as a uint32[2] variable `[seed, counter]` that each
    training call reads and then increments; a fresh layer built with
    `seed=s` starts at `[s, 0]`, so this makes the layer draw exactly what a
    fresh one would. A layer with rate/stddev 0 has no stream (nothing to do).
    """
    generator = getattr(layer, "seed_generator", None)
    if generator is not None:
        generator.state.assign(np.array([seed, 0], dtype=np.uint32))


class Dropout:
    """`keras.layers.Dropout(rate, noise_shape=..., seed=seed)` as a subject.

    Rates Keras refuses raise Keras' own ValueError from the constructor.
    """

    def __init__(self, rate, seed, noise_shape=None):
        if noise_shape is not None:
            noise_shape = tuple(noise_shape)
        self.rate = rate
        self._layer = keras.layers.Dropout(rate, noise_shape=noise_shape, seed=seed)
        # Seed-generator state (uint32[2]) that the last training call read,
        # and that call's input shape: enough to replay the call exactly.
        self._last_state = None
        self._last_shape = None

    def _state(self):
        generator = getattr(self._layer, "seed_generator", None)
        return None if generator is None else jnp.array(generator.state.value)

    def run(self, x, training):
        """One eager call of the layer."""
        x = _f32(x)
        if training:
            self._last_state = self._state()
            self._last_shape = x.shape
        return _f32(self._layer(x, training=bool(training)))

    def _replay(self, x):
        """The last training call's forward on `x`, with that call's mask.

        The layer's own stateless call with the seed-generator state the call
        read: the same code path and the same draw, traceable by jax.grad.
        """
        state = [] if self._last_state is None else [self._last_state]
        y, _ = self._layer.stateless_call([], state, x, training=True)
        return y

    def _require_training_call(self):
        if self._last_shape is None:
            raise RuntimeError("no training call yet: backward/mask need one")

    def backward(self, dy):
        """Input gradient of sum(y * dy) for the last training call."""
        self._require_training_call()
        dy = _f32(dy)
        if dy.shape != self._last_shape:
            raise ValueError(
                f"dy has shape {dy.shape}, the last training call had {self._last_shape}"
            )
        dy = jnp.asarray(dy)
        # Dropout is linear in x, so the point the gradient is taken at is moot.
        grad = jax.grad(lambda x: jnp.sum(self._replay(x) * dy))(jnp.zeros_like(dy))
        return _f32(grad)

    def mask(self):
        """Bool keep mask of the last training call, input-shaped.

        Exact: the replayed call on ones keeps 1/(1-rate) > 0 where the unit is
        kept and gives 0 where it is dropped (rate 1: all dropped).
        """
        self._require_training_call()
        y = self._replay(jnp.ones(self._last_shape, dtype=jnp.float32))
        return np.ascontiguousarray(np.asarray(y) != 0)

    def reseed(self, seed):
        """After this, the same sequence of calls gives the same masks (as a
        fresh layer with `seed=seed` would)."""
        _reseed_layer(self._layer, seed)


_NOISE_KINDS = (
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
)


class NoiseLayer:
    """One of Keras' other noise layers as a subject.

    `param` is the stddev for GaussianNoise and the rate otherwise;
    `data_format` only for SpatialDropout2D/3D (the others take none, and a
    value given for them is refused rather than ignored).
    """

    def __init__(self, kind, param, seed, data_format=None):
        if kind not in _NOISE_KINDS:
            raise ValueError(f"unknown noise layer {kind!r}; expected one of {_NOISE_KINDS}")
        cls = getattr(keras.layers, kind)
        kwargs = {"seed": seed}
        if kind in ("SpatialDropout2D", "SpatialDropout3D"):
            kwargs["data_format"] = data_format
        elif data_format is not None:
            raise ValueError(f"{kind} takes no data_format (got {data_format!r})")
        self.kind = kind
        self.param = param
        self._layer = cls(param, **kwargs)

    def run(self, x, training):
        """One eager call of the layer."""
        return _f32(self._layer(_f32(x), training=bool(training)))

    def reseed(self, seed):
        """After this, the same sequence of calls gives the same noise."""
        _reseed_layer(self._layer, seed)


_PARTS = ("base", "head", "whole")
_VARIANTS = ("trainable_false", "training_false")


class Model:
    """nncheck's conformance model as a compiled Keras model.

    ``inp(6) -> base -> head``, base = Sequential "base": Dense(16) ->
    [BatchNormalization()] -> ReLU() -> Dropout(rate) -> Dense(8); head =
    Dense(1) "head". MSE loss. Variant "trainable_false" calls the base
    normally (freezing is by `trainable` only); "training_false" is the
    transfer-learning idiom ``base(inp, training=False)``. (Measured with
    Keras 3.15.1: a functional model's own `training` argument overrides the
    recorded ``training=False``, so in train_on_batch and in
    ``model(x, training=True)`` the base's dropout and BatchNormalization run
    in training mode in both variants; only `trainable` puts BN in inference.)

    Seeds: `spec["seed"]` (folded to 32 bits, Keras' seed width) seeds the
    Glorot-uniform kernels of dense, dense_1 and head with seed, seed+1,
    seed+2 and the dropout's mask stream with seed+3; biases are zero.
    """

    def __init__(self, spec, variant):
        if variant not in _VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {_VARIANTS}")
        self.spec = dict(spec)
        self.variant = variant
        seed = int(spec["seed"])

        def glorot(k):
            return keras.initializers.GlorotUniform(seed=(seed + k) & _U32)

        L = keras.layers
        # Explicit names: Keras' automatic names count up per process (dense_7,
        # ...), and the weight names must be the same for every model built.
        stack = [L.Dense(16, kernel_initializer=glorot(0), name="dense")]
        if spec["batch_norm"]:
            stack.append(L.BatchNormalization(name="batch_normalization"))
        stack += [
            L.ReLU(name="re_lu"),
            L.Dropout(float(spec["rate"]), seed=(seed + 3) & _U32, name="dropout"),
            L.Dense(8, kernel_initializer=glorot(1), name="dense_1"),
        ]
        self.base = keras.Sequential(stack, name="base")
        self.head = L.Dense(1, kernel_initializer=glorot(2), name="head")
        inp = keras.Input(shape=(6,), name="x")
        if variant == "training_false":
            hidden = self.base(inp, training=False)
        else:
            hidden = self.base(inp)
        self.model = keras.Model(inp, self.head(hidden), name="model")
        self._compile()

    def _optimizer(self):
        spec = self.spec
        name = spec["optimizer"]
        lr = float(spec["learning_rate"])
        wd = float(spec.get("weight_decay", 0.0))
        opt = keras.optimizers
        if name == "sgd":
            return opt.SGD(lr, weight_decay=wd or None)
        if name == "momentum":
            return opt.SGD(lr, momentum=0.9, weight_decay=wd or None)
        if name == "nesterov":
            return opt.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd or None)
        if name == "adam":
            return opt.Adam(lr, epsilon=1e-7, weight_decay=wd or None)
        if name == "adamw":
            return opt.AdamW(lr, weight_decay=wd, epsilon=1e-7)
        raise ValueError(f"unknown optimizer {name!r}")

    def _compile(self):
        # A fresh optimizer each time, as the Keras fine-tuning guide does: an
        # optimizer is built for one set of trainable variables and refuses
        # others, so reusing it after unfreezing would fail.
        self.model.compile(optimizer=self._optimizer(), loss="mean_squared_error")

    def set_trainable(self, part, trainable):
        """Freezes (False) or unfreezes (True) `part` recursively and compiles
        again, as Keras tells its users to (the optimizer state starts over).

        Measured with Keras 3.15.1 (JAX): once the optimizer is built (first
        step), train_on_batch without compile() raises ValueError on any change
        of the trainable set, freeze or unfreeze ("optimizer_variables must be
        a list of tensors corresponding 1:1 ..."), and so does compile() with
        the same optimizer object; compile() with a fresh optimizer works.
        """
        if part not in _PARTS:
            raise ValueError(f"unknown part {part!r}; expected one of {_PARTS}")
        target = {"base": self.base, "head": self.head, "whole": self.model}[part]
        target.trainable = bool(trainable)  # Keras recurses into sublayers
        self._compile()

    def fit_step(self, x, y):
        """One optimizer step on the whole batch; the loss of its forward."""
        y = _f32(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        # reset_metrics (the default) makes the loss this batch's alone.
        loss = self.model.train_on_batch(_f32(x), y)
        return float(loss)

    def forward(self, x, training):
        return _f32(self.model(_f32(x), training=bool(training)))

    def weights(self):
        """Every weight (BatchNorm moving statistics included), by path."""
        out = []
        for v in self.model.weights:
            if not v.path.startswith(("base/", "head/")):
                raise RuntimeError(f"unexpected weight path {v.path!r}")
            out.append((v.path, _f32(v.value)))
        return out

    def optimizer_state(self):
        """Per model weight: its optimizer slots, flattened, in weights() order.

        SGD with momentum: the momentum; Adam/AdamW: m then v; plain SGD, and
        weights the optimizer does not update (frozen when it was built, or
        BatchNorm statistics): an empty list. Keras keeps one step count for
        the whole optimizer (`iterations`), none per weight, so none is listed.
        """
        opt = self.model.optimizer
        if not opt.built:
            return [(v.path, []) for v in self.model.weights]
        if isinstance(opt, keras.optimizers.Adam):  # AdamW is an Adam
            slot_lists = [("momentum", opt._momentums), ("velocity", opt._velocities)]
        elif isinstance(opt, keras.optimizers.SGD):
            slot_lists = [("momentum", opt.momentums)] if opt.momentum else []
        else:
            raise RuntimeError(f"no slot layout known for {type(opt).__name__}")
        out = []
        for v in self.model.weights:
            try:
                index = opt._get_variable_index(v)
            except KeyError:
                out.append((v.path, []))
                continue
            values = []
            for slot, variables in slot_lists:
                s = variables[index]
                # The slot's own name says whose it is: check the private index.
                expected = f"{v.path.replace('/', '_')}_{slot}"
                if not s.path.endswith(expected):
                    raise RuntimeError(f"slot {s.path!r} is not {expected!r}")
                values.extend(float(a) for a in np.asarray(s.value, dtype=np.float32).ravel())
            out.append((v.path, values))
        return out


def time_fit_step(spec, variant, x, y, steps):
    """Seconds per train_on_batch step of Model(spec, variant) with its base
    frozen, after 3 warm-up steps (which compile the step)."""
    model = Model(spec, variant)
    model.set_trainable("base", False)
    for _ in range(3):
        model.fit_step(x, y)
    x, y = _f32(x), _f32(y)
    start = time.perf_counter()
    for _ in range(steps):
        model.fit_step(x, y)
    return (time.perf_counter() - start) / steps
