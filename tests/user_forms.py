"""Models and data in the forms users train them (tests/test_user_data.py): integer ids above 2**24, several
inputs and outputs, dict inputs, a subclassed model, tf.data and PyDataset pipelines, callbacks and fit arguments
through `sinecheck.FitSpec` (in
``tests/user_fit_specs.py``), sample and class weights.  Each is tiny: a few hundred samples, a few units."""

from __future__ import annotations

import keras
import numpy as np

N = 128
BIG_ID = 1979350788  # above 2**24: float32 would make it 1979350784


# -- integer ids ---------------------------------------------------------------------------------------------


def ids() -> tuple[np.ndarray, np.ndarray]:
    """int64 ids above 2**24 (one of them `BIG_ID`) and a 0/1 label."""
    rng = np.random.default_rng(0)
    x = rng.integers(2**24, 2**40, size=(N, 1), dtype=np.int64)
    x[0, 0] = BIG_ID
    return x, (x % 2).astype(np.float32)


def id_passthrough() -> object:
    """Predicts ``id % 1000`` exactly (plus a trained branch multiplied by zero): its predictions show the ids the
    model was given."""
    inp = keras.Input((1,), dtype="int64")
    rest = keras.layers.Lambda(lambda t: keras.ops.cast(keras.ops.mod(t, 1000), "float32"))(inp)
    hashed = keras.layers.Flatten()(keras.layers.Embedding(16, 2)(keras.layers.Hashing(16)(inp)))
    zero = keras.layers.Lambda(lambda t: 0.0 * t)(keras.layers.Dense(1)(hashed))
    return keras.Model(inp, keras.layers.Add()([rest, zero]))


def hashed_ids() -> object:
    """int64 ids → Hashing(64) → Embedding(64, 4) → Dense(1, sigmoid), compiled with binary cross-entropy."""
    inp = keras.Input((1,), dtype="int64")
    hashed = keras.layers.Flatten()(keras.layers.Embedding(64, 4)(keras.layers.Hashing(64)(inp)))
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(hashed))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


# -- several inputs and outputs ------------------------------------------------------------------------------


def two_in_two_out() -> object:
    """Inputs ``numbers`` (4) and ``tokens`` (int ids, 6) → outputs ``score`` (regression) and ``kind`` (3 classes),
    compiled with dict losses and loss weights."""
    numbers = keras.Input((4,), name="numbers")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    embedded = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 3)(tokens))
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([numbers, embedded]))
    score = keras.layers.Dense(1, name="score")(hidden)
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(hidden)
    model = keras.Model([numbers, tokens], [score, kind])
    model.compile(
        optimizer="adam",
        loss={"score": "mse", "kind": "sparse_categorical_crossentropy"},
        loss_weights={"score": 1.0, "kind": 0.2},
    )
    return model


def _two_inputs(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    numbers = rng.standard_normal((n, 4)).astype(np.float32)
    tokens = rng.integers(0, 20, size=(n, 6)).astype(np.int32)
    score = numbers.sum(axis=1, keepdims=True)
    kind = (tokens[:, 0] % 3).astype(np.int64)
    return numbers, tokens, score, kind


def two_in_two_out_data() -> tuple[object, ...]:
    """x as a tuple (in the model's input order), y as a dict keyed by output name; a held-out pair too."""
    numbers, tokens, score, kind = _two_inputs()
    held = _two_inputs(32, seed=1)
    return (numbers, tokens), {"score": score, "kind": kind}, (held[0], held[1]), {"score": held[2], "kind": held[3]}


def dict_inputs_data() -> tuple[object, ...]:
    """x as a dict keyed by input name, y as a tuple in the model's output order."""
    numbers, tokens, score, kind = _two_inputs()
    return {"tokens": tokens, "numbers": numbers}, (score, kind)


def wrong_keys_data() -> tuple[object, ...]:
    numbers, tokens, score, kind = _two_inputs()
    return {"numbers": numbers, "words": tokens}, (score, kind)


# -- a subclassed model --------------------------------------------------------------------------------------


class Residual(keras.Model):
    """A subclassed model: its weights exist only once it has been called."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.out = keras.layers.Dense(1)

    def call(self, x: object) -> object:
        return self.out(self.hidden(x)) + x


def subclassed() -> object:
    return Residual()


class Lazy(keras.Model):
    """Uses its layer only in training: calling it for inference creates no weights."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, x: object, training: object = None) -> object:
        return self.dense(x) if training else x


def lazy() -> object:
    return Lazy()


# -- pipelines -----------------------------------------------------------------------------------------------


def _series(n: int = N + 8) -> np.ndarray:
    return np.sin(np.linspace(0, 12, n)).astype(np.float32)


def window_model() -> object:
    return keras.Sequential([keras.Input((8, 1)), keras.layers.LSTM(4), keras.layers.Dense(1)])


def windows() -> object:
    """A tf.data window pipeline: windows of 8 values → the next one, shuffled (seeded by the global seed) and
    batched by 16."""
    import tensorflow as tf

    def whole(window: tf.data.Dataset) -> tf.data.Dataset:
        return window.batch(9)

    def split(values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return values[:-1, None], values[-1:]

    ds = tf.data.Dataset.from_tensor_slices(_series()).window(9, shift=1, drop_remainder=True)
    return ds.flat_map(whole).map(split).shuffle(64).batch(16)


def windows_forever() -> object:
    return windows().repeat()


def windows_with_held_out() -> tuple[object, object]:
    import tensorflow as tf

    train = windows()
    held = _series(40) + np.float32(0.01)
    x = np.stack([held[i : i + 8] for i in range(32)])[..., None]
    return train, tf.data.Dataset.from_tensor_slices((x, held[8:40, None])).batch(8)


class Windows(keras.utils.PyDataset):
    """The same windows as a PyDataset of 8 batches of 16."""

    def __init__(self) -> None:
        super().__init__()
        series = _series()
        self.x = np.stack([series[i : i + 8] for i in range(N)])[..., None]
        self.y = series[8 : N + 8, None]

    def __len__(self) -> int:
        return N // 16

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part = slice(index * 16, (index + 1) * 16)
        return self.x[part], self.y[part]


def py_windows() -> object:
    return Windows()


# -- sample and class weights -----------------------------------------------------------------------


def small_dense() -> object:
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])


def weighted(value: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.linspace(-3, 3, N, dtype=np.float32)[:, None]
    return x, np.sin(x), np.full(N, value, np.float32)


def weighted_half() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, w = weighted()
    w[::2] = 1.0
    return x, y, w


def classifier() -> object:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def classes() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((N, 2)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)


def one_hot_classes() -> tuple[np.ndarray, np.ndarray]:
    x, y = classes()
    return x, np.eye(3, dtype=np.float32)[y]


def categorical_classifier() -> object:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy())
    return model
