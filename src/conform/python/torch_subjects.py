"""PyTorch as an nncheck conformance subject.

nncheck's Rust adapter embeds this file (``include_str!``) into an embedded
CPython (pyo3) whose ``sys.path`` holds the site-packages of ``.venv/torch``
(``python/make-env.sh torch``), and calls the names below. It exposes
PyTorch's own layers and training loop, unchanged, so that nncheck's
invariants judge PyTorch itself:

- ``Dropout``: ``torch.nn.Dropout`` / ``Dropout1d`` / ``Dropout2d`` /
  ``Dropout3d`` / ``AlphaDropout`` as a dropout subject (forward, input
  gradient, reseeding, exact keep mask).
- ``Model``: a small model that mirrors nncheck's Keras-shaped model spec,
  trained the way a PyTorch user trains it, frozen either the way many users
  freeze (``requires_grad_(False)`` only) or the way they are told to
  (``requires_grad_(False)`` and ``.eval()``).
- ``time_fit_step``: eager PyTorch's cost of one training step.

Conventions at the boundary: every array in and out is a C-contiguous numpy
float32 array (bool for masks); tensors never cross it. Everything runs on the
CPU in float32. An array returned may share memory with the array passed in
(eval-phase dropout returns its input itself, as PyTorch does); the caller
copies what it keeps.

Threads: this module leaves ``torch.set_num_threads`` at PyTorch's default
(one intra-op thread per core): that is what a user gets, and the setting is
process-wide, so it belongs to the embedding program, not to this module. The
dropout masks do not depend on it (the CPU Bernoulli kernel draws serially,
element by element, from the generator). The model's arithmetic is
deterministic for a given thread count but its last bits differ between thread
counts (matrix products and reductions split differently), so runs are
compared bit for bit only under the same setting. On a loaded 2-core machine
two OpenMP threads make these tiny ops many times slower; an embedder that
wants speed sets ``OMP_NUM_THREADS=1`` before torch loads or calls
``torch.set_num_threads(1)`` itself.

Randomness: ``nn.Dropout`` has no generator argument; it draws from torch's
global CPU generator. To give every layer and model a reproducible stream of
its own, each holds a generator *state*; around each call that may draw, the
global state is saved, the object's state swapped in, and after the call the
advanced state is read back and the global one restored (what
``torch.random.fork_rng`` does, without its accelerator lookup). The swap is
guarded by a module lock, because torch releases the GIL inside its ops and
the Rust side calls in from several test threads. Seeds go through
``torch.manual_seed`` semantics, so ``Dropout(p, seed=s)`` draws the masks a
user gets from ``torch.manual_seed(s); nn.Dropout(p)(x)``; note that torch's
CPU generator (mt19937) keeps only the low 32 bits of a seed.
"""

from __future__ import annotations

import contextlib
import platform
import threading
import time

import numpy as np
import torch
from torch import nn

__all__ = ["versions", "Dropout", "Model", "time_fit_step"]

# Guards the global CPU generator while an object's own state is swapped in.
# Reentrant so that helpers holding it may call each other.
_RNG_LOCK = threading.RLock()

_DROPOUT_KINDS = {
    "Dropout": nn.Dropout,
    "Dropout1d": nn.Dropout1d,
    "Dropout2d": nn.Dropout2d,
    "Dropout3d": nn.Dropout3d,
    "AlphaDropout": nn.AlphaDropout,
}


def versions() -> dict[str, str]:
    """The versions nncheck reports for this subject."""
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _seeded_state(seed: int | None) -> torch.Tensor:
    """The CPU generator state ``torch.manual_seed(seed)`` leaves, or one seeded
    from OS entropy when ``seed`` is None (an unseeded layer is still isolated
    from every other layer's stream)."""
    g = torch.Generator(device="cpu")
    if seed is None:
        g.seed()  # std::random_device, as torch.seed() does
    else:
        g.manual_seed(int(seed))
    return g.get_state()


@contextlib.contextmanager
def _own_stream(holder):
    """Runs the body with ``holder._rng_state`` as torch's global CPU generator
    state and stores the advanced state back; the global state is restored, so
    nothing outside sees a draw."""
    with _RNG_LOCK:
        saved = torch.get_rng_state()
        torch.set_rng_state(holder._rng_state)
        try:
            yield
        finally:
            holder._rng_state = torch.get_rng_state()
            torch.set_rng_state(saved)


def _tensor(x) -> torch.Tensor:
    """A float32 CPU tensor over ``x``: shares its memory when ``x`` already is a
    writable C-contiguous float32 array (the usual case), copies otherwise
    (``torch.from_numpy`` warns on read-only arrays)."""
    a = np.asarray(x)
    if a.dtype != np.float32 or not a.flags.c_contiguous or not a.flags.writeable:
        a = np.array(a, dtype=np.float32, order="C", copy=True)
    return torch.from_numpy(a)


def _array(t: torch.Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy array of ``t`` (a view where possible)."""
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


class Dropout:
    """One of torch's dropout modules as an nncheck dropout subject.

    The rate goes to torch unvalidated: what torch refuses (at construction or
    at the first training call) raises torch's own exception.
    """

    def __init__(self, rate: float, seed: int | None, kind: str = "Dropout"):
        if kind not in _DROPOUT_KINDS:
            raise ValueError(
                f"unknown dropout kind {kind!r}; expected one of {sorted(_DROPOUT_KINDS)}"
            )
        self.kind = kind
        self.rate = rate
        self.layer = _DROPOUT_KINDS[kind](rate)
        self._rng_state = _seeded_state(seed)
        # The last training call's leaf input and output; the graph between
        # them is kept so backward() and mask() can be asked any number of times.
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None

    def run(self, x: np.ndarray, training: bool) -> np.ndarray:
        """One call in train() or eval() mode, as a user's model calls it."""
        xt = _tensor(x)
        if not training:
            self.layer.eval()
            with torch.no_grad():
                return _array(self.layer(xt))
        self.layer.train()
        xt.requires_grad_(True)
        with _own_stream(self):
            y = self.layer(xt)
        self._x, self._y = xt, y
        return _array(y)

    def _input_grad(self, dy: torch.Tensor) -> torch.Tensor:
        if self._x is None:
            raise RuntimeError("no training call yet")
        if self._y is self._x:
            # rate 0: torch returns the input tensor itself, so dy/dx is dy.
            return dy
        (dx,) = torch.autograd.grad(
            self._y, self._x, grad_outputs=dy, retain_graph=True, allow_unused=True
        )
        return torch.zeros_like(self._x) if dx is None else dx

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """The input gradient of ``sum(y * dy)`` for the last training call,
        through torch's autograd graph of that call (so with its very mask)."""
        return _array(self._input_grad(_tensor(dy)))

    def reseed(self, seed: int) -> None:
        """Restarts the layer's stream: the next calls repeat those made after
        construction with ``seed``."""
        self._rng_state = _seeded_state(seed)

    def mask(self) -> np.ndarray:
        """The keep mask (input-shaped, True = kept) of the last training call.

        Exact, read from torch's own graph rather than recomputed: every kind
        computes ``y = x * noise (+ b)`` with ``noise`` = 0 where dropped and a
        positive scale where kept, so the gradient of ``sum(y)`` is ``noise``
        and is nonzero exactly where a unit was kept, whatever ``x`` holds
        (NaN, inf, 0). Feature dropout's per-channel mask comes out broadcast
        to the input's shape."""
        if self._y is None:
            raise RuntimeError("no training call yet")
        dx = self._input_grad(torch.ones_like(self._y))
        return np.ascontiguousarray((dx != 0).cpu().numpy())


_PARTS = ("base", "head", "whole")
_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
_VARIANTS = ("requires_grad", "requires_grad_eval")


class _Net(nn.Module):
    def __init__(self, rate: float, batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(6, 16)]
        if batch_norm:
            # torch's momentum weighs the new batch: 0.01 is Keras' 0.99.
            layers.append(nn.BatchNorm1d(16, eps=1e-3, momentum=0.01))
        layers += [nn.ReLU(), nn.Dropout(rate), nn.Linear(16, 8)]
        self.base = nn.Sequential(*layers)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.base(x))


class Model:
    """nncheck's model spec built and trained as a PyTorch user would.

    ``variant`` says how a part is frozen:
    ``"requires_grad"`` — ``part.requires_grad_(False)`` only;
    ``"requires_grad_eval"`` — that and ``part.eval()``, re-applied after
    every ``model.train()`` (unfreezing: ``requires_grad_(True)`` and
    ``.train()``).

    Weights are in torch's layout (a Linear weight is ``(out, in)``) under
    torch's names with ``/``: ``base/0/weight``, ``base/1/running_mean``,
    ``head/bias``.
    """

    def __init__(self, spec: dict, variant: str):
        if variant not in _VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {_VARIANTS}")
        opt = spec["optimizer"]
        if opt not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {opt!r}; expected one of {_OPTIMIZERS}")
        self.variant = variant
        self.spec = dict(spec)
        # One stream per model, started as a user's script starts it with
        # torch.manual_seed(seed): construction and Glorot init draw first,
        # dropout masks continue the same stream, so init and masks are
        # reproducible from `seed` and do not repeat each other's numbers.
        self._rng_state = _seeded_state(int(spec["seed"]))
        with _own_stream(self):
            self.net = _Net(float(spec["rate"]), bool(spec["batch_norm"]))
            for m in self.net.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
        lr = float(spec["learning_rate"])
        wd = float(spec["weight_decay"])
        params = list(self.net.parameters())  # all of them, as users build it
        if opt == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=lr, weight_decay=wd)
        elif opt == "momentum":
            self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
        elif opt == "nesterov":
            self.optimizer = torch.optim.SGD(
                params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd
            )
        elif opt == "adam":
            self.optimizer = torch.optim.Adam(params, lr=lr, eps=1e-7, weight_decay=wd)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=lr, eps=1e-7, weight_decay=wd)
        self.loss_fn = nn.MSELoss()  # mean over every element
        # Modules frozen with .eval() in the _eval variant, each listed itself
        # (not only its part), so unfreezing a sub-part of a frozen whole works.
        self._eval_frozen: set[nn.Module] = set()

    def _part(self, part: str) -> nn.Module:
        if part == "base":
            return self.net.base
        if part == "head":
            return self.net.head
        if part == "whole":
            return self.net
        raise ValueError(f"unknown part {part!r}; expected one of {_PARTS}")

    def set_trainable(self, part: str, trainable: bool) -> None:
        module = self._part(part)
        module.requires_grad_(bool(trainable))
        if self.variant != "requires_grad_eval":
            return
        members = set(module.modules())
        if trainable:
            self._eval_frozen -= members
            module.train()
        else:
            self._eval_frozen |= members
            module.eval()

    def _set_phase(self, training: bool) -> None:
        self.net.train(training)
        # A user's loop re-applies .eval() to frozen parts after model.train().
        # Set per module, not recursively: an unfrozen child of a frozen
        # parent is not in the set and keeps training mode.
        for m in self._eval_frozen:
            m.training = False

    def fit_step(self, x, y) -> float:
        """One optimizer step on the batch; the loss of its forward (before the
        update). With every parameter frozen there is nothing to differentiate:
        the backward pass is skipped (torch would raise) and step() moves
        nothing, as a fully frozen Keras model's fit does."""
        xt, yt = _tensor(x), _tensor(y)
        self._set_phase(True)
        # set_to_none (torch's default): a frozen parameter has grad None, and
        # every torch optimizer skips such parameters entirely (no decay, no
        # momentum, no step count).
        self.optimizer.zero_grad(set_to_none=True)
        with _own_stream(self):
            loss = self.loss_fn(self.net(xt), yt)
        if loss.requires_grad:
            loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def forward(self, x, training: bool) -> np.ndarray:
        """A forward pass in train() or eval() mode under torch.no_grad(). In
        train mode torch's BatchNorm still updates its running statistics (of
        parts in train mode), as a user's training-mode forward does."""
        xt = _tensor(x)
        self._set_phase(bool(training))
        with torch.no_grad():
            if training:
                with _own_stream(self):
                    out = self.net(xt)
            else:
                out = self.net(xt)
        return np.array(_array(out), copy=True)

    def weights(self) -> list[tuple[str, np.ndarray]]:
        """Every parameter and buffer (BatchNorm running_mean, running_var and
        num_batches_tracked, the last as float32), copied: later steps update
        torch's tensors in place."""
        out = []
        for name, t in self.net.state_dict().items():
            a = t.detach().cpu().numpy().astype(np.float32, copy=True)
            out.append((name.replace(".", "/"), np.ascontiguousarray(a)))
        return out

    def optimizer_state(self) -> list[tuple[str, list[float]]]:
        """Per parameter: its state tensors flattened (SGD with momentum:
        momentum_buffer; Adam/AdamW: exp_avg then exp_avg_sq) then its step
        count where torch keeps one (Adam/AdamW; SGD keeps none). A parameter
        the optimizer never stepped has an empty list."""
        out = []
        for name, p in self.net.named_parameters():
            st = self.optimizer.state.get(p, {})
            values: list[float] = []
            for key in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
                t = st.get(key)
                if t is not None:
                    values.extend(t.detach().cpu().reshape(-1).tolist())
            if "step" in st:
                values.append(float(st["step"]))
            out.append((name.replace(".", "/"), values))
        return out


def time_fit_step(spec: dict, variant: str, x, y, steps: int) -> float:
    """Seconds per eager fit_step with the base frozen, after 3 warm-up steps."""
    model = Model(spec, variant)
    model.set_trainable("base", False)
    for _ in range(3):
        model.fit_step(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.fit_step(x, y)
    return (time.perf_counter() - start) / max(int(steps), 1)
