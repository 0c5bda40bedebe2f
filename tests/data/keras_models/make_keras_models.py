"""Makes the Keras 3 model fixtures in this folder: `<name>.keras` files saved
by Keras itself, and beside each a `<name>.expected.json` saying what Keras
does with that file, for `nncheck inspect` and its tests.

Run from the repository root, in the project's Keras environment
(`python/make-env.sh keras`):

    .venv/keras/bin/python tests/data/keras_models/make_keras_models.py

Pinned: Keras 3.15.1 on JAX 0.10.2, CPU (`KERAS_BACKEND=jax` is set here; the
versions are asserted). Everything is seeded (`keras.utils.set_random_seed`
and numpy generators with fixed seeds), so a second run gives the same bytes:
Keras writes the save date into `metadata.json` and the wall-clock time into
the zip headers, so after `model.save` this script rewrites the archive with
the same members, in the same order, stored (uncompressed) as Keras stores
them, with a fixed timestamp (1980-01-01) and `date_saved` set to
"1980-01-01@00:00:00", and the `shared_object_id`s in `config.json` (Python
id()s, used only to pair up shared objects) renumbered 1, 2 ... in order of
first appearance. Otherwise `config.json` and `model.weights.h5` are Keras'
bytes, untouched, and every check below runs on the rewritten file.

The models (all float32):
  question          the question's model: Sequential model_A (Dense 16, BN,
                    ReLU, Dropout 0.5, Dense 1) and model_B (Dense 8, Dropout
                    0.5, Dense 1), each fitted, frozen, joined on one Input by
                    Dense(1, name="head")(Concatenate([model_A(x),
                    model_B(x)])), AdamW(weight_decay=0.01) + MSE, fitted.
  pinned_base       transfer learning: a fitted, frozen Sequential `base`
                    (Dense, BN, ReLU, Dropout 0.3, Dense) called as
                    base(x, training=False), an unpinned Dropout and a Dense
                    head after it; Adam + MSE.
  nested            outer Functional > `mid` Functional > `inner_seq`
                    Sequential (fitted, frozen, except one Dense in it set
                    back to trainable); dropout at all three levels; a
                    Concatenate in `mid`; Adam + MSE.
  train_only_layers every train-only layer: Dropout, GaussianNoise,
                    GaussianDropout, AlphaDropout on a rank-2 path (two of
                    them inside a frozen Sequential), SpatialDropout1D/2D/3D on
                    rank-3/4/5 inputs; pins: GaussianNoise and
                    SpatialDropout2D training=True (Monte-Carlo),
                    AlphaDropout and SpatialDropout3D training=False. Four
                    inputs, four outputs; Adam + MSE.
  unsupported_layer Dense, LayerNormalization (not in the core), Dropout,
                    Dense; Adam + MSE.

How the expected values are observed. Each model is saved, then loaded back
from its `.keras` file with `keras.saving.load_model` (what a user's file
gives), and everything below is observed on the LOADED model:
  * `predict`: Keras' `model.predict` on fixed inputs.
  * `fit_step`: ONE `model.train_on_batch(x, y)` on fixed x, y (the compiled
    optimizer and loss restored from the file). Every variable is copied
    before and after the step; `moved` says whether any of its bits changed.
  * Per call of a train-only layer (and of BatchNormalization) in a phase:
    the `call` method of each of these Keras classes is wrapped (at class
    level, before any model is built) by a function that runs Keras' own
    `call` unchanged, then hands the layer's input and output to
    `jax.debug.callback`, which gives their concrete values from inside the
    jitted, differentiated train step without changing the computation. So
    what is recorded is the real fit step (the real predict, the real direct
    call), with whatever `training` value Keras actually passed to that layer:
    pins are honoured exactly as much as Keras honours them, and nothing is
    re-run in a probe. Recorded: `training` as the layer's `call` received it,
    and `differs`: whether the output differs from the input in any bit (for
    BatchNormalization instead `batch_statistics`: whether `training and
    trainable`, the condition under which Keras' BN normalises with the batch
    statistics and updates its moving statistics). The phases are `fit` (the
    train_on_batch step), `predict` (model.predict), and `call` (a direct
    `model(x)` with no `training` argument, the only case in which Keras
    3.15.1 applies per-node pins: see below).
  * A cross-check, not recorded per value: the same step is run on a second
    copy loaded with the same seed but without the instrumentation, and the
    variables after it must be bit-identical, showing the wrappers change
    nothing; and the same phases are run on the in-memory model that was
    saved, whose `training` flags, `differs` and `moved` must agree with the
    loaded model's (its dropout masks may differ: its seed state is not the
    loaded one's).

What Keras 3.15.1 does with pins (found here, recorded in the files, not
assumed): a node's `training=` kwarg is stored in config.json
(`inbound_nodes[i].kwargs.training`), and for a layer whose `call` has the
default `training=False` (every train-only layer) an UNPINNED node is stored
with `"training": false` too, so the config cannot tell "pinned False" from
"unpinned". When a functional model is called with a `training` value that is
not None (fit passes True, predict and evaluate pass False), that value
overrides every node's stored `training` kwarg (`operation_fn` in
keras/src/models/functional.py), so pins have effect only in a call with no
`training` argument. `pin` below is what this script wrote in the source;
`config_training` what config.json stores.

Also found: `Sequential.from_config` drops the model's own `trainable`
(a frozen nested Sequential loads with `trainable == True`; its layers keep
their own False flags, so the same weights stay frozen). `trainable` below is
the flag the saved model had; `keras_load_trainable` is added where the
loaded model's flag differs. The SpatialDropout layers write no `trainable`
key at all (BaseSpatialDropout.get_config), so they load as trainable; they
have no weights. A nested model compiled and fitted on its own keeps its own
optimizer's variables in the file; Keras skips loading them, with a warning
that this script silences.

Layout of `<name>.expected.json`:
  keras_version, jax_version, backend, h5py_version, hdf5_version,
  numpy_version (h5py writes model.weights.h5; these are not asserted)
  inputs:  [{layer, shape}] in model.inputs order (the Input layer's name);
  outputs: [{layer, shape}] in model.outputs order (the producing layer)
  layers:  [{path, class, trainable, config_trainable,
             keras_load_trainable?, pin, config_training, h5_group}] for every
           layer, depth first, nested models included; path joins layer
           names with "/" below the top model ("model_A/dropout");
           `trainable` is the layer's own flag as the saved model had it,
           `config_trainable` the key in config.json (null where absent: the
           SpatialDropout layers' get_config omits it); pin and
           config_training are lists, one entry per call node of the layer in
           its parent model (null: none; a layer inside a Sequential has no
           node in config.json); h5_group is the layer's group in
           model.weights.h5
  weights: [{path, h5_dataset, shape, trainable, moved}] in save order;
           `trainable` is Keras' effective flag in fit (is the variable in
           model.trainable_variables); `moved` is from the fit step
  optimizer_groups: h5 groups holding optimizer variables (`optimizer`, and
           `layers/<...>/optimizer` for a nested model that was compiled and
           fitted on its own before being nested): every other dataset in
           model.weights.h5 is one of `weights`
  predict: {x: [one array per input], y: [one per output]}
  fit_step: {x, y, loss}: the batch of the one train_on_batch step and the
           loss it returned
  call_phases: {fit|predict|call: [{path, class, training, differs |
           batch_statistics}]}, one entry per call, in the order of `layers`
Arrays are nested lists of float32 values written as JSON numbers (the
shortest decimal that reads back, as float64, to the exact float32 value;
cast to f32 after parsing).
"""

import functools
import inspect
import io
import json
import os
import re
import sys
import zipfile

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import warnings  # noqa: E402

import h5py  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

KERAS_VERSION = "3.15.1"
JAX_VERSION = "0.10.2"
assert keras.__version__ == KERAS_VERSION, keras.__version__
assert jax.__version__ == JAX_VERSION, jax.__version__
assert keras.backend.backend() == "jax"
assert jax.default_backend() == "cpu", jax.default_backend()
keras.config.set_floatx("float32")
warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")

OUT = os.path.dirname(os.path.abspath(__file__))
L = keras.layers
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DATE_SAVED = "1980-01-01@00:00:00"

TRAIN_ONLY = (
    L.Dropout,
    L.GaussianNoise,
    L.GaussianDropout,
    L.AlphaDropout,
    L.SpatialDropout1D,
    L.SpatialDropout2D,
    L.SpatialDropout3D,
)

# --------------------------------------------------------------------------
# Instrumentation: wraps `call` of the train-only classes and of BN.

INSTRUMENT = False  # read when a call is traced: adds the callback or not
PHASE = None  # read when the callback runs: where its record goes
RECORDS = {}  # phase -> list of (layer id, class, training, flag)


def _record(layer_id, cls_name, training, is_bn, trainable, x, y):
    if PHASE is None:
        return
    if is_bn:
        flag = bool(training) and bool(trainable)
    else:
        x = np.asarray(x)
        y = np.asarray(y)
        flag = x.shape != y.shape or not np.array_equal(
            x.view(np.uint32), y.view(np.uint32)
        )
    RECORDS.setdefault(PHASE, []).append((layer_id, cls_name, training, flag))


def _wrap_call(cls):
    orig = cls.__dict__["call"]
    sig = inspect.signature(orig)
    is_bn = issubclass(cls, L.BatchNormalization)

    @functools.wraps(orig)
    def call(self, inputs, *args, **kwargs):
        out = orig(self, inputs, *args, **kwargs)
        if INSTRUMENT:
            bound = sig.bind(self, inputs, *args, **kwargs)
            bound.apply_defaults()
            training = bound.arguments.get("training")
            training = None if training is None else bool(training)
            jax.debug.callback(
                functools.partial(
                    _record,
                    id(self),
                    type(self).__name__,
                    training,
                    is_bn,
                    self.trainable,
                ),
                inputs,
                out,
            )
        return out

    cls.call = call


_wrapped = set()
for _cls in TRAIN_ONLY + (L.BatchNormalization,):
    for _base in _cls.__mro__:
        if "call" in _base.__dict__ and _base not in _wrapped:
            if _base.__module__.startswith("keras.src.layers"):
                _wrap_call(_base)
                _wrapped.add(_base)
            break

# --------------------------------------------------------------------------
# Helpers.


def f32_list(a):
    # float32 -> float64 is exact; json writes the float64's shortest repr.
    return np.asarray(a, dtype=np.float32).astype(np.float64).tolist()


def rng_array(seed, shape, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def is_model(layer):
    return isinstance(layer, keras.Model)


def snake(cls_name):
    # keras.src.utils.naming.to_snake_case, as saving_lib names h5 groups.
    from keras.src.utils import naming

    return naming.to_snake_case(cls_name)


def walk(model, prefix="", h5_prefix=""):
    """(path, layer, parent, h5_group) for each layer below `model`, depth
    first, in the order Keras saves them (model.layers), h5 groups named as
    keras.src.saving.saving_lib names them: the snake_case class name, made
    unique within each `layers` container with _1, _2 ..."""
    used = {}
    for layer in model.layers:
        base = snake(type(layer).__name__)
        if base in used:
            used[base] += 1
            h5_name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            h5_name = base
        group = f"{h5_prefix}layers/{h5_name}"
        if isinstance(layer, L.InputLayer):
            continue
        path = prefix + layer.name
        yield path, layer, model, group
        if is_model(layer):
            yield from walk(layer, path + "/", group + "/")


def own_variables(layer):
    # Layer.save_own_variables' order: these are vars/0, vars/1, ...
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def nodes_of(layer, parent):
    """The call nodes of `layer` inside `parent`'s graph."""
    if not hasattr(parent, "_nodes_by_depth") or isinstance(parent, keras.Sequential):
        return []
    out = []
    for nodes in parent._nodes_by_depth.values():
        for node in nodes:
            if node.operation is layer and not node.is_input:
                out.append(node)
    return out


def config_layers(cfg):
    """layer name -> layer config, for every layer in a model config tree."""
    found = {}

    def rec(c, prefix):
        for lc in c["config"].get("layers", []):
            name = lc["config"]["name"]
            if lc["class_name"] == "InputLayer":
                continue
            found[prefix + name] = lc
            if "layers" in lc["config"]:
                rec(lc, prefix + name + "/")

    rec(cfg, "")
    return found


def renumber_shared_ids(data):
    """config.json's `shared_object_id`s are Python id()s: renumbered 1, 2 ...
    in order of first appearance (they only pair up shared objects)."""
    ids = {}

    def sub(m):
        new = ids.setdefault(m.group(2), len(ids) + 1)
        return m.group(1) + str(new).encode()

    return re.sub(rb'("shared_object_id": )(\d+)', sub, data)


def normalize_archive(path):
    """Rewrites the .keras zip with a fixed timestamp and date_saved; members,
    order, bytes of config.json and model.weights.h5 and compression (stored)
    are kept."""
    with zipfile.ZipFile(path) as zf:
        members = [(i, zf.read(i.filename)) for i in zf.infolist()]
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in members:
            assert info.compress_type == zipfile.ZIP_STORED, info
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = FIXED_DATE_SAVED
                data = json.dumps(meta).encode()
            if info.filename == "config.json":
                data = renumber_shared_ids(data)
            new = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            new.compress_type = zipfile.ZIP_STORED
            new.external_attr = info.external_attr
            zf.writestr(new, data)


def to_json(obj, indent=0):
    """JSON with one line per row of numbers and per short record."""
    flat = json.dumps(obj)
    scalar = lambda v: not isinstance(v, (dict, list))  # noqa: E731
    simple = lambda v: scalar(v) or (isinstance(v, list) and all(map(scalar, v)))  # noqa: E731
    if scalar(obj) or (isinstance(obj, list) and all(map(scalar, obj))):
        return flat
    if isinstance(obj, dict) and all(map(simple, obj.values())) and len(flat) <= 260:
        return flat
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        items = [f"{pad}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + to_json(v, indent + 1) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def snapshot(model):
    return {id(v): np.array(v.numpy(), copy=True) for v in model.variables}


def same_bits(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def run_phase(model, phase, fn):
    """Runs fn with the instrumentation on; returns the records of `phase`."""
    global INSTRUMENT, PHASE
    RECORDS.pop(phase, None)
    INSTRUMENT, PHASE = True, phase
    try:
        result = fn()
        jax.effects_barrier()
    finally:
        INSTRUMENT, PHASE = False, None
    return result, RECORDS.pop(phase, [])


def observe(model, x, y, px, seed):
    """One instrumented predict, direct call and train_on_batch on `model`."""
    keras.utils.set_random_seed(seed)
    jax.clear_caches()  # no step traced earlier, without the wrappers, is reused
    model.make_predict_function(force=True)
    model.make_train_function(force=True)
    pred, rec_predict = run_phase(model, "predict", lambda: model.predict(px, verbose=0))
    _, rec_call = run_phase(model, "call", lambda: model(px))
    before = snapshot(model)
    loss, rec_fit = run_phase(model, "fit", lambda: model.train_on_batch(x, y))
    after = snapshot(model)
    return {
        "predict": pred if isinstance(pred, list) else [pred],
        "records": {"predict": rec_predict, "call": rec_call, "fit": rec_fit},
        "before": before,
        "after": after,
        "loss": loss,
    }


# --------------------------------------------------------------------------
# The models. Each builder returns (model, pins, data) where pins maps a
# layer path to the training value written at its call in this source, and
# data holds fixed predict inputs and a fixed fit batch.


def fit_quietly(model, x, y, epochs=3, batch_size=16):
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)


def build_question():
    x = rng_array(1, (64, 8))
    y = (x[:, :1] * 0.5 - x[:, 1:2] + 0.1).astype(np.float32)
    model_a = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(16),
            L.BatchNormalization(),
            L.ReLU(),
            L.Dropout(0.5),
            L.Dense(1),
        ],
        name="model_A",
    )
    model_a.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fit_quietly(model_a, x, y)
    model_b = keras.Sequential(
        [keras.Input((8,)), L.Dense(8), L.Dropout(0.5), L.Dense(1)], name="model_B"
    )
    model_b.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fit_quietly(model_b, x, y)
    model_a.trainable = False
    model_b.trainable = False
    inp = keras.Input((8,), name="x")
    out = L.Dense(1, name="head")(L.Concatenate()([model_a(inp), model_b(inp)]))
    model = keras.Model(inp, out, name="question")
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.01), loss="mse")
    fit_quietly(model, x, y, epochs=2)
    return model, {}


def build_pinned_base():
    x = rng_array(2, (64, 8))
    y8 = rng_array(3, (64, 8), 0.5)
    y = (x[:, :1] - x[:, 2:3] * 0.25).astype(np.float32)
    base = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(16),
            L.BatchNormalization(),
            L.ReLU(),
            L.Dropout(0.3),
            L.Dense(8),
        ],
        name="base",
    )
    base.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fit_quietly(base, x, y8)
    base.trainable = False
    inp = keras.Input((8,), name="x")
    h = base(inp, training=False)
    h = L.Dropout(0.5, name="head_dropout")(h)
    out = L.Dense(1, name="head")(h)
    model = keras.Model(inp, out, name="pinned_base")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fit_quietly(model, x, y, epochs=2)
    return model, {"base": False}


def build_nested():
    x = rng_array(4, (64, 8))
    y6 = rng_array(5, (64, 6), 0.5)
    y = (x[:, 3:4] + 0.5 * x[:, 4:5]).astype(np.float32)
    inner = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(6, name="inner_dense"),
            L.BatchNormalization(name="inner_bn"),
            L.ReLU(name="inner_relu"),
            L.Dropout(0.25, name="inner_dropout"),
            L.Dense(6, name="inner_out"),
        ],
        name="inner_seq",
    )
    inner.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fit_quietly(inner, x, y6)
    inner.trainable = False
    # Set back to trainable inside the frozen Sequential: Keras trains a
    # variable whose own flag is True as long as the model being fit is
    # trainable (Layer.trainable_variables filters by variable).
    inner.get_layer("inner_out").trainable = True
    mi = keras.Input((8,), name="mid_in")
    a = inner(mi)
    b = L.Dense(6, name="mid_dense")(mi)
    c = L.Concatenate(name="mid_concat")([a, b])
    d = L.Dropout(0.3, name="mid_dropout")(c)
    o = L.Dense(4, name="mid_out")(d)
    mid = keras.Model(mi, o, name="mid")
    inp = keras.Input((8,), name="x")
    h = mid(inp)
    h = L.Dropout(0.2, name="outer_dropout")(h)
    out = L.Dense(1, name="head")(h)
    model = keras.Model(inp, out, name="nested")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fit_quietly(model, x, y, epochs=2)
    return model, {}


def build_train_only_layers():
    n = 32
    x2 = rng_array(6, (n, 6))
    x3 = rng_array(7, (n, 5, 4))
    x4 = rng_array(8, (n, 3, 3, 4))
    x5 = rng_array(9, (n, 2, 2, 2, 4))
    ys = [
        rng_array(10, (n, 2), 0.5),
        rng_array(11, (n, 5, 1), 0.5),
        rng_array(12, (n, 3, 3, 2), 0.5),
        rng_array(13, (n, 2, 2, 2, 2), 0.5),
    ]
    noise_block = keras.Sequential(
        [
            keras.Input((6,)),
            L.Dense(6, name="block_dense"),
            L.GaussianDropout(0.2, name="block_gaussian_dropout"),
            L.Dropout(0.3, name="block_dropout"),
        ],
        name="noise_block",
    )
    noise_block.trainable = False
    i2 = keras.Input((6,), name="x2")
    i3 = keras.Input((5, 4), name="x3")
    i4 = keras.Input((3, 3, 4), name="x4")
    i5 = keras.Input((2, 2, 2, 4), name="x5")
    h = L.Dense(6, name="d2")(i2)
    h = L.Dropout(0.3, name="dropout")(h)
    h = L.GaussianNoise(0.1, name="gaussian_noise")(h, training=True)
    h = L.GaussianDropout(0.2, name="gaussian_dropout")(h)
    h = L.AlphaDropout(0.2, name="alpha_dropout")(h, training=False)
    h = noise_block(h)
    o2 = L.Dense(2, name="out2")(h)
    h = L.Dense(4, name="d3")(i3)
    h = L.SpatialDropout1D(0.3, name="spatial_dropout1d")(h)
    o3 = L.Dense(1, name="out3")(h)
    h = L.SpatialDropout2D(0.3, name="spatial_dropout2d")(i4, training=True)
    o4 = L.Dense(2, name="out4")(h)
    h = L.SpatialDropout3D(0.3, name="spatial_dropout3d")(i5, training=False)
    o5 = L.Dense(2, name="out5")(h)
    model = keras.Model([i2, i3, i4, i5], [o2, o3, o4, o5], name="train_only_layers")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=["mse"] * 4)
    model.fit([x2, x3, x4, x5], ys, epochs=2, batch_size=16, shuffle=False, verbose=0)
    pins = {
        "gaussian_noise": True,
        "alpha_dropout": False,
        "spatial_dropout2d": True,
        "spatial_dropout3d": False,
    }
    return model, pins


def build_unsupported_layer():
    x = rng_array(14, (64, 8))
    y = (x[:, :1] * x[:, 1:2]).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((8,), name="x"),
            L.Dense(8, name="dense"),
            L.LayerNormalization(name="layer_norm"),
            L.Dropout(0.2, name="dropout"),
            L.Dense(1, name="head"),
        ],
        name="unsupported_layer",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    fit_quietly(model, x, y, epochs=2)
    return model, {}


BUILDERS = [
    ("question", build_question, 101),
    ("pinned_base", build_pinned_base, 102),
    ("nested", build_nested, 103),
    ("train_only_layers", build_train_only_layers, 104),
    ("unsupported_layer", build_unsupported_layer, 105),
]

# --------------------------------------------------------------------------


def fixed_batches(model, seed, rows):
    """Fixed predict inputs and a fixed fit batch for the model's inputs and
    outputs (one array per input / output, `rows` rows each)."""
    r = np.random.default_rng(seed)

    def draw(shapes, scale):
        return [
            (r.standard_normal((rows,) + tuple(s[1:])) * scale).astype(np.float32)
            for s in shapes
        ]

    in_shapes = [tuple(t.shape) for t in model.inputs]
    out_shapes = [tuple(t.shape) for t in model.outputs]
    return draw(in_shapes, 1.0), draw(in_shapes, 1.0), draw(out_shapes, 0.5)


def unwrap(xs):
    return xs[0] if len(xs) == 1 else xs


def make_one(name, builder, seed):
    keras.backend.clear_session()  # auto names (dense_1 ...) start afresh
    keras.utils.set_random_seed(seed)
    model, pins = builder()
    path = os.path.join(OUT, f"{name}.keras")
    model.save(path)
    normalize_archive(path)

    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read("config.json"))
        weights_bytes = zf.read("model.weights.h5")
    cfg_layers = config_layers(config)

    px, fx, fy = fixed_batches(model, seed + 1000, 4)

    # The loaded model: what the file gives.
    keras.utils.set_random_seed(seed + 2000)
    loaded = keras.saving.load_model(path)
    obs = observe(loaded, unwrap(fx), unwrap(fy), unwrap(px), seed + 3000)

    # Cross-check 1: the instrumentation changes nothing.
    keras.utils.set_random_seed(seed + 2000)
    jax.clear_caches()
    plain = keras.saving.load_model(path)
    keras.utils.set_random_seed(seed + 3000)
    plain.predict(unwrap(px), verbose=0)
    plain(unwrap(px))
    plain.train_on_batch(unwrap(fx), unwrap(fy))
    for va, vb in zip(loaded.variables, plain.variables):
        assert same_bits(va.numpy(), vb.numpy()), (name, va.path)

    # Cross-check 2: the in-memory model agrees on flags, differs, moved.
    mem = observe(model, unwrap(fx), unwrap(fy), unwrap(px), seed + 3000)

    layers_l = list(walk(loaded))
    layers_m = list(walk(model))
    assert [p for p, *_ in layers_l] == [p for p, *_ in layers_m], name
    by_id_l = {id(layer): path for path, layer, _, _ in layers_l}
    by_id_m = {id(layer): path for path, layer, _, _ in layers_m}

    order = {id(layer): i for i, (_, layer, _, _) in enumerate(layers_l)}
    order.update({id(layer): i for i, (_, layer, _, _) in enumerate(layers_m)})

    def calls(records, by_id):
        out = []
        # Callbacks of one jitted step may run in any order: sort by layer.
        records = sorted(records, key=lambda r: order[r[0]])
        for layer_id, cls_name, training, flag in records:
            entry = {"path": by_id[layer_id], "class": cls_name, "training": training}
            entry["batch_statistics" if cls_name == "BatchNormalization" else "differs"] = flag
            out.append(entry)
        return out

    phases = {p: calls(obs["records"][p], by_id_l) for p in ("fit", "predict", "call")}
    phases_mem = {p: calls(mem["records"][p], by_id_m) for p in ("fit", "predict", "call")}
    assert phases == phases_mem, (name, phases, phases_mem)

    # Layers.
    h5 = h5py.File(io.BytesIO(weights_bytes), "r")
    layers = []
    for (path, layer, parent, group), (_, mlayer, mparent, _) in zip(layers_l, layers_m):
        lc = cfg_layers[path]
        cfg_trainable = lc["config"].get("trainable")
        assert cfg_trainable in (None, mlayer.trainable), (name, path)
        nodes = nodes_of(mlayer, mparent)
        pin_written = pins.get(path)
        entry = {
            "path": path,
            "class": type(layer).__name__,
            "trainable": mlayer.trainable,
            "config_trainable": cfg_trainable,
        }
        if layer.trainable != mlayer.trainable:
            entry["keras_load_trainable"] = layer.trainable
        entry["pin"] = [pin_written for _ in nodes] if nodes else [pin_written]
        entry["config_training"] = [
            n.get("kwargs", {}).get("training") for n in lc.get("inbound_nodes", [])
        ] or [None]
        entry["h5_group"] = group
        assert h5[group + "/vars"].attrs["name"] == layer.name, (name, group)
        layers.append(entry)

    # Weights: save order, with the moved bit from the loaded model's step.
    trainable_ids = {id(v) for v in loaded.trainable_variables}
    trainable_ids_mem = {id(v) for v in model.trainable_variables}
    weights = []
    for (path, layer, _, group), (_, mlayer, _, _) in zip(layers_l, layers_m):
        for i, (v, mv) in enumerate(zip(own_variables(layer), own_variables(mlayer))):
            ds = f"{group}/vars/{i}"
            moved = not same_bits(obs["before"][id(v)], obs["after"][id(v)])
            moved_mem = not same_bits(mem["before"][id(mv)], mem["after"][id(mv)])
            assert moved == moved_mem, (name, path, v.name)
            assert (id(v) in trainable_ids) == (id(mv) in trainable_ids_mem), (name, path)
            # The saved value is the loaded value before the step.
            assert same_bits(h5[ds][()], obs["before"][id(v)]), (name, ds)
            weights.append(
                {
                    "path": f"{path}/{v.name}",
                    "h5_dataset": ds,
                    "shape": list(v.shape),
                    "trainable": id(v) in trainable_ids,
                    "moved": moved,
                }
            )
    # Every dataset in the file is a weight listed above or an optimizer's
    # variable (the top model's, and a nested model's own when it was
    # compiled and fitted on its own before being nested).
    listed = {w["h5_dataset"] for w in weights}
    in_file = set()
    optimizer_groups = set()

    def visit(n, o):
        if isinstance(o, h5py.Dataset):
            m = re.match(r"^(.*?optimizer)/vars/\d+$", n)
            if m:
                optimizer_groups.add(m.group(1))
            else:
                in_file.add(n)

    h5.visititems(visit)
    assert listed == in_file, (name, in_file ^ listed)
    h5.close()

    # Predict: the loaded model's output equals the saved model's.
    pred_mem = mem["predict"]
    for a, b in zip(obs["predict"], pred_mem):
        assert same_bits(a, b), name

    expected = {
        "keras_version": keras.__version__,
        "jax_version": jax.__version__,
        "backend": "jax (cpu)",
        "h5py_version": h5py.version.version,
        "hdf5_version": h5py.version.hdf5_version,
        "numpy_version": np.__version__,
        "inputs": [
            {"layer": t._keras_history.operation.name, "shape": list(t.shape)}
            for t in loaded.inputs
        ],
        "outputs": [
            {"layer": t._keras_history.operation.name, "shape": list(t.shape)}
            for t in loaded.outputs
        ],
        "layers": layers,
        "weights": weights,
        "optimizer_groups": sorted(optimizer_groups),
        "predict": {"x": [f32_list(a) for a in px], "y": [f32_list(a) for a in obs["predict"]]},
        "fit_step": {
            "x": [f32_list(a) for a in fx],
            "y": [f32_list(a) for a in fy],
            "loss": float(np.float32(np.asarray(obs["loss"]).ravel()[0])),
        },
        "call_phases": phases,
    }
    with open(os.path.join(OUT, f"{name}.expected.json"), "w") as f:
        f.write(to_json(expected))
        f.write("\n")
    return expected


def main(argv):
    names = argv[1:] or [n for n, _, _ in BUILDERS]
    for name, builder, seed in BUILDERS:
        if name in names:
            e = make_one(name, builder, seed)
            moved = sum(w["moved"] for w in e["weights"])
            print(f"{name}: {len(e['layers'])} layers, {len(e['weights'])} weights, {moved} moved in the fit step")


if __name__ == "__main__":
    main(sys.argv)
