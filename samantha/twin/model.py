"""The twin's model: a small numpy MLP that classifies synthetic sensor vectors.

Real arithmetic on every request, small enough to train in a fraction of a second,
so a bundle can be built on the fly and two versions differ a little (as retrained
models do) while a bad bundle differs a lot.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

N_FEATURES = 8
N_HIDDEN = 16
N_CLASSES = 4
_CENTERS_SEED = 7  # the world the sensors measure; fixed so every version learns the same task


def class_centers() -> np.ndarray:
    return np.random.default_rng(_CENTERS_SEED).normal(0.0, 1.5, size=(N_CLASSES, N_FEATURES))


def synthetic_inputs(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`n` sensor vectors with their true classes; `shift` moves every feature (input drift)."""
    labels = rng.integers(0, N_CLASSES, size=n)
    x = class_centers()[labels] + rng.normal(0.0, 1.0, size=(n, N_FEATURES)) + shift
    return x.astype(np.float32), labels


@dataclass(frozen=True)
class SensorModel:
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def predict(self, x: np.ndarray, bias: float = 0.0) -> np.ndarray:
        """Class probabilities for a (N_FEATURES,) vector or an (n, N_FEATURES) batch.

        `bias` is added to class 0's logit: how a defective bundle skews its answers.
        """
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        z = h @ self.w2 + self.b2
        if bias:
            z = z.copy()
            z[..., 0] += bias
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2)
        return buf.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> SensorModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            m = cls(w1=z["w1"], b1=z["b1"], w2=z["w2"], b2=z["b2"])
        shapes = {"w1": (N_FEATURES, N_HIDDEN), "b1": (N_HIDDEN,), "w2": (N_HIDDEN, N_CLASSES), "b2": (N_CLASSES,)}
        for name, shape in shapes.items():
            arr = getattr(m, name)
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(f"weights {name}: expected finite {shape}, got {arr.shape}")
        return m


def train_model(seed: int = 0, steps: int = 300, lr: float = 0.1) -> SensorModel:
    """Full-batch gradient descent on synthetic data; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    x, y = synthetic_inputs(rng, 2000)
    w1 = rng.normal(0, 0.3, (N_FEATURES, N_HIDDEN)).astype(np.float32)
    b1 = np.zeros(N_HIDDEN, np.float32)
    w2 = rng.normal(0, 0.3, (N_HIDDEN, N_CLASSES)).astype(np.float32)
    b2 = np.zeros(N_CLASSES, np.float32)
    onehot = np.eye(N_CLASSES, dtype=np.float32)[y]
    for _ in range(steps):
        pre = x @ w1 + b1
        h = np.maximum(pre, 0.0)
        z = h @ w2 + b2
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        dz = (p - onehot) / len(x)
        dw2, db2 = h.T @ dz, dz.sum(0)
        dh = (dz @ w2.T) * (pre > 0)
        dw1, db1 = x.T @ dh, dh.sum(0)
        w1 -= lr * dw1
        b1 -= lr * db1
        w2 -= lr * dw2
        b2 -= lr * db2
    return SensorModel(w1, b1, w2, b2)


def accuracy(model: SensorModel, seed: int = 99, n: int = 1000, shift: float = 0.0) -> float:
    x, y = synthetic_inputs(np.random.default_rng(seed), n, shift)
    return float((model.predict(x).argmax(axis=1) == y).mean())
