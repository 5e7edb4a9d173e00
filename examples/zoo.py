"""A model zoo: small models transcribed from public Keras examples, for checking sinecheck on real user models.

Each ``NAME()`` factory builds and compiles its model the way its example does (loss, optimizer, metrics) and
returns it, or a `sinecheck.FitSpec` when the example trains with callbacks; ``NAME_data()`` makes small
synthetic data in code (NumPy, a fixed seed, at most 256 training samples, plus held-out data) in one of the
forms a data spec may return: ``(x, y, x_held_out, y_held_out)`` with arrays or dicts of arrays, or a pair of
`tf.data` datasets.  The architectures keep their example's character (layers, activations, losses, compile
settings) but are tiny: a few units or filters, so that an epoch takes milliseconds on a CPU.

    sinecheck run --model examples/zoo.py:mnist_convnet --data examples/zoo.py:mnist_convnet_data
    pytest --sinecheck-model=examples/zoo.py:hashed_ids --sinecheck-data=examples/zoo.py:hashed_ids_data

Like ``examples/models.py``, the factories follow ``TF_USE_LEGACY_KERAS`` as ``tf.keras`` does (Keras 2 through
``tf_keras``), and Keras itself is imported inside the functions only.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from sinecheck import FitSpec

N_TRAIN = 192
N_HELD_OUT = 64
MODELS = (
    "mnist_convnet",
    "timeseries_classifier",
    "weather_forecaster",
    "text_transformer",
    "ticket_router",
    "recommender",
    "hashed_ids",
    "mixed_precision_mlp",
)


def _keras():
    if os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes"):
        import tf_keras

        return tf_keras
    import keras

    return keras


# -- shared synthetic data -----------------------------------------------------------------------------------


def _split(n_train: int, *arrays: Any) -> tuple[Any, ...]:
    """``(train..., held_out...)``: each array (or dict of arrays) cut after its first `n_train` samples."""

    def cut(a: Any, part: slice) -> Any:
        return {k: v[part] for k, v in a.items()} if isinstance(a, dict) else a[part]

    return tuple(cut(a, slice(None, n_train)) for a in arrays) + tuple(cut(a, slice(n_train, None)) for a in arrays)


def _patterns(seed: int, shape: tuple[int, ...], classes: int, *, noise: float = 0.8) -> tuple[Any, ...]:
    """``(x, y, x_held_out, y_held_out)``: each sample is its class's fixed random pattern of `shape` plus
    Gaussian noise; float32 inputs, int64 labels."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(classes, *shape))
    y = rng.integers(classes, size=N_TRAIN + N_HELD_OUT)
    x = (patterns[y] + noise * rng.normal(size=(len(y), *shape))).astype(np.float32)
    return _split(N_TRAIN, x, y)


def _tokens(rng: np.random.Generator, labels: np.ndarray, classes: int, length: int, vocab: int) -> np.ndarray:
    """Pre-padded int64 token sequences of random length whose words lean to their label's share of `vocab`
    (token 0 is padding, as ``keras.utils.pad_sequences`` leaves it)."""
    shares = np.array_split(np.arange(1, vocab), classes)
    out = np.zeros((len(labels), length), dtype=np.int64)
    for row, label in enumerate(labels):
        n = rng.integers(length // 2, length + 1)
        own = rng.random(n) < 0.7
        words = np.where(own, rng.choice(shares[label], n), rng.integers(1, vocab, n))
        out[row, length - n :] = words
    return out


def _ratings(seed: int, users: int, movies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user, movie, rating)`` for `N_TRAIN` + `N_HELD_OUT` ratings: int64 indices and a float32 rating in
    [0, 1] (one column) from low-rank user and movie tastes."""
    rng = np.random.default_rng(seed)
    taste_u, taste_m = rng.normal(size=(users, 2)), rng.normal(size=(movies, 2))
    user = rng.integers(users, size=N_TRAIN + N_HELD_OUT)
    movie = rng.integers(movies, size=N_TRAIN + N_HELD_OUT)
    rating = 1 / (1 + np.exp(-np.sum(taste_u[user] * taste_m[movie], axis=1)))
    return user, movie, rating.astype(np.float32)[:, None]


# -- the models ----------------------------------------------------------------------------------------------


def mnist_convnet():
    """Conv2D → MaxPooling2D twice, Flatten, Dropout(0.5), softmax; categorical cross-entropy, Adam, accuracy.

    From "Simple MNIST convnet" by fchollet, https://keras.io/examples/vision/mnist_convnet/ — 4 and 8
    filters instead of 32 and 64, on 14×14 images.
    """
    keras = _keras()
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(14, 14, 1)),
            layers.Conv2D(4, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def mnist_convnet_data():
    """14×14×1 float32 images of 10 noisy class patterns; one-hot float32 labels (as ``to_categorical``)."""
    x, y, x_held, y_held = _patterns(1, (14, 14, 1), 10)
    eye = np.eye(10, dtype=np.float32)
    return x, eye[y], x_held, eye[y_held]


def timeseries_classifier():
    """A fully convolutional classifier: three Conv1D → BatchNormalization → ReLU blocks, global average pooling,
    softmax; sparse categorical cross-entropy, Adam, accuracy; trained with ReduceLROnPlateau and EarlyStopping
    on ``val_loss`` and ``validation_split=0.2`` — a `FitSpec`.

    From "Timeseries classification from scratch" by hfawaz,
    https://keras.io/examples/timeseries/timeseries_classification_from_scratch/ — 8 filters instead of 64,
    series of 32 steps instead of FordA's 500, patience 2 and 5 instead of 20 and 50 (and no ModelCheckpoint:
    it writes files).
    """
    keras = _keras()
    layers = keras.layers
    inputs = layers.Input((32, 1))
    x = inputs
    for _ in range(3):
        x = layers.Conv1D(filters=8, kernel_size=3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs=inputs, outputs=layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=5),
    ]
    return FitSpec(model, callbacks=callbacks, fit_kwargs={"validation_split": 0.2})


def timeseries_classifier_data():
    """Univariate float32 series of 32 steps, two noisy classes (as FordA's engine noise, z-normalised);
    int64 labels 0 / 1."""
    return _patterns(2, (32, 1), 2, noise=1.0)


WEATHER = {"past": 16, "future": 4, "step": 2, "batch_size": 32, "rows": 300, "train_split": 200}


def weather_forecaster():
    """LSTM → Dense(1) on windows of 7 weather features; MSE, Adam(0.001).

    From "Timeseries forecasting for weather prediction" by Prabhanshu Attri, Yashika Sharma, Kristi Takach
    and Falak Shah, https://keras.io/examples/timeseries/timeseries_weather_forecasting/ — LSTM(8) instead of
    LSTM(32), windows of 8 steps instead of 120; fed by the `tf.data` pipeline of ``weather_forecaster_data``.
    """
    keras = _keras()
    inputs = keras.layers.Input(shape=(WEATHER["past"] // WEATHER["step"], 7))
    outputs = keras.layers.Dense(1)(keras.layers.LSTM(8)(inputs))
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    return model


def weather_forecaster_data():
    """``(train, held_out)``: `tf.data` datasets from ``keras.utils.timeseries_dataset_from_array`` over 7
    normalised float32 features (cycles of 12 to 96 rows plus noise), as in the example: a window of `past` rows
    sampled every `step`-th row, and as its target the temperature (feature 1) `future` rows after the window."""
    keras = _keras()
    past, future, step, rows, split = (WEATHER[k] for k in ("past", "future", "step", "rows", "train_split"))
    rng = np.random.default_rng(3)
    t = np.arange(rows)[:, None]
    periods, phases = rng.uniform(12, 96, size=7), rng.uniform(0, 2 * np.pi, size=7)
    features = np.sin(2 * np.pi * t / periods + phases) + 0.1 * rng.normal(size=(rows, 7))
    features = ((features - features[:split].mean(0)) / features[:split].std(0)).astype(np.float32)
    start = past + future
    windows = {"sequence_length": past // step, "sampling_rate": step, "batch_size": WEATHER["batch_size"]}
    train = keras.utils.timeseries_dataset_from_array(features[:split], features[start : start + split, 1:2], **windows)
    held_out = keras.utils.timeseries_dataset_from_array(
        features[split : rows - start], features[split + start :, 1:2], **windows
    )
    return train, held_out


TEXT = {"maxlen": 16, "vocab_size": 100, "embed_dim": 8, "num_heads": 2, "ff_dim": 8}


def _transformer_layers(keras):
    """The example's two layer classes for this Keras: a Transformer block and token + position embeddings."""
    layers = keras.layers
    if hasattr(keras, "ops"):
        arange = keras.ops.arange
    else:  # tf_keras has no keras.ops
        import tensorflow as tf

        arange = tf.range

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(rate)
            self.dropout2 = layers.Dropout(rate)

        def call(self, inputs, training=None):
            attn_output = self.dropout1(self.att(inputs, inputs), training=training)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.dropout2(self.ffn(out1), training=training)
            return self.layernorm2(out1 + ffn_output)

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.maxlen = maxlen
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            return self.token_emb(x) + self.pos_emb(arange(self.maxlen))

    return TransformerBlock, TokenAndPositionEmbedding


def text_transformer():
    """Token + position embeddings, a Transformer block (multi-head self-attention, feed-forward, layer norms,
    Dropout) as layer subclasses, global average pooling, Dropout, Dense, softmax over 2 classes; sparse
    categorical cross-entropy, Adam, accuracy.

    From "Text classification with Transformer" by Apoorv Nandan,
    https://keras.io/examples/nlp/text_classification_with_transformer/ — a vocabulary of 100 instead of 20000,
    16 tokens instead of 200, embeddings of 8 instead of 32.
    """
    keras = _keras()
    layers = keras.layers
    transformer_block, token_and_position = _transformer_layers(keras)
    inputs = layers.Input(shape=(TEXT["maxlen"],))
    x = token_and_position(TEXT["maxlen"], TEXT["vocab_size"], TEXT["embed_dim"])(inputs)
    x = transformer_block(TEXT["embed_dim"], TEXT["num_heads"], TEXT["ff_dim"])(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(8, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    model = keras.Model(inputs=inputs, outputs=layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def text_transformer_data():
    """Pre-padded int64 token ids (as ``keras.utils.pad_sequences`` leaves IMDB reviews) whose words lean to
    their class; int64 labels 0 / 1."""
    rng = np.random.default_rng(4)
    y = rng.integers(2, size=N_TRAIN + N_HELD_OUT)
    return _split(N_TRAIN, _tokens(rng, y, 2, TEXT["maxlen"], TEXT["vocab_size"]), y)


TICKETS = {"num_tags": 6, "num_words": 100, "num_departments": 4, "title": 6, "body": 12}


def ticket_router():
    """Three inputs (title and body token ids of any length, binary tags) and two outputs (a priority logit and
    department logits) in one functional model: Embedding → LSTM per text input, concatenated with the tags;
    RMSprop(1e-3), dict losses (binary and categorical cross-entropy from logits) and loss weights 1.0 / 0.2.

    From the functional API guide's "Models with multiple inputs and outputs" by fchollet,
    https://keras.io/guides/functional_api/ — a vocabulary of 100 instead of 10000, embeddings of 8 instead of 64,
    LSTM(8) and LSTM(4) instead of 128 and 32, 6 tags instead of 12.
    """
    keras = _keras()
    layers = keras.layers
    title_input = keras.Input(shape=(None,), name="title")
    body_input = keras.Input(shape=(None,), name="body")
    tags_input = keras.Input(shape=(TICKETS["num_tags"],), name="tags")
    title_features = layers.LSTM(8)(layers.Embedding(TICKETS["num_words"], 8)(title_input))
    body_features = layers.LSTM(4)(layers.Embedding(TICKETS["num_words"], 8)(body_input))
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(TICKETS["num_departments"], name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input], outputs=[priority_pred, department_pred])
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    return model


def ticket_router_data():
    """Dicts keyed by the input and output names: int64 title and body token ids that lean to the ticket's
    department, float32 binary tags; a float32 priority in [0, 1] (more tags, more urgent) and a one-hot
    float32 department."""
    rng = np.random.default_rng(5)
    n = N_TRAIN + N_HELD_OUT
    department = rng.integers(TICKETS["num_departments"], size=n)
    tags = rng.integers(2, size=(n, TICKETS["num_tags"])).astype(np.float32)
    inputs = {
        "title": _tokens(rng, department, TICKETS["num_departments"], TICKETS["title"], TICKETS["num_words"]),
        "body": _tokens(rng, department, TICKETS["num_departments"], TICKETS["body"], TICKETS["num_words"]),
        "tags": tags,
    }
    targets = {
        "priority": (tags.mean(axis=1, keepdims=True) * 0.8 + 0.2 * rng.random((n, 1))).astype(np.float32),
        "department": np.eye(TICKETS["num_departments"], dtype=np.float32)[department],
    }
    return _split(N_TRAIN, inputs, targets)


RATINGS = {"users": 24, "movies": 32}


def recommender():
    """A subclassed model (``class RecommenderNet(keras.Model)`` with ``call``): user and movie embeddings
    (he_normal, L2-regularised) and biases, their dot product plus the biases through a sigmoid; binary
    cross-entropy, Adam(0.001).  Returned unbuilt, as a subclassed model is until it first sees data.

    From "Collaborative Filtering for Movie Recommendations" by Siddhartha Banerjee,
    https://keras.io/examples/structured_data/collaborative_filtering_movielens/ — embeddings of 4 instead of 50
    (the Dot layer is made in ``__init__`` rather than in each ``call``).
    """
    keras = _keras()
    layers = keras.layers

    class RecommenderNet(keras.Model):
        def __init__(self, num_users, num_movies, embedding_size, **kwargs):
            super().__init__(**kwargs)
            regularised = {"embeddings_initializer": "he_normal", "embeddings_regularizer": keras.regularizers.l2(1e-6)}
            self.user_embedding = layers.Embedding(num_users, embedding_size, **regularised)
            self.user_bias = layers.Embedding(num_users, 1)
            self.movie_embedding = layers.Embedding(num_movies, embedding_size, **regularised)
            self.movie_bias = layers.Embedding(num_movies, 1)
            self.dot = layers.Dot(axes=1)

        def call(self, inputs):
            user_vector = self.user_embedding(inputs[:, 0])
            movie_vector = self.movie_embedding(inputs[:, 1])
            x = self.dot([user_vector, movie_vector]) + self.user_bias(inputs[:, 0]) + self.movie_bias(inputs[:, 1])
            return keras.activations.sigmoid(x)

    model = RecommenderNet(RATINGS["users"], RATINGS["movies"], 4)
    model.compile(loss=keras.losses.BinaryCrossentropy(), optimizer=keras.optimizers.Adam(learning_rate=0.001))
    return model


def recommender_data():
    """int64 (user, movie) index pairs; float32 ratings scaled to [0, 1], one column."""
    user, movie, rating = _ratings(6, RATINGS["users"], RATINGS["movies"])
    return _split(N_TRAIN, np.stack([user, movie], axis=1), rating)


def hashed_ids():
    """Raw int64 user and movie IDs through ``Hashing`` (64 bins, salt 1337) and an Embedding each, their dot
    product, sigmoid × 5 as the rating; MSE, Adam(0.001), mean absolute error.

    From the baseline model of "Memory-efficient embeddings for recommendation systems" by Khalid Salama,
    https://keras.io/examples/keras_recipes/memory_efficient_embeddings/ — with the hashing trick of "Working
    with preprocessing layers" by Francois Chollet and Mark Omernick,
    https://keras.io/guides/preprocessing_layers/ ("Applying the hashing trick to an integer categorical
    feature") in place of a StringLookup vocabulary; embeddings of 4 instead of 64.
    """
    keras = _keras()
    layers = keras.layers

    def embedding_encoder(name):
        return keras.Sequential(
            [layers.Hashing(num_bins=64, salt=1337), layers.Embedding(input_dim=64, output_dim=4)],
            name=f"{name}_embedding",
        )

    user_input = layers.Input(name="user_id", shape=(), dtype="int64")
    movie_input = layers.Input(name="movie_id", shape=(), dtype="int64")
    logits = layers.Dot(axes=1, name="dot_similarity")(
        [embedding_encoder("user")(user_input), embedding_encoder("movie")(movie_input)]
    )
    prediction = keras.activations.sigmoid(logits) * 5
    model = keras.Model(inputs=[user_input, movie_input], outputs=prediction, name="baseline_model")
    model.compile(
        optimizer=keras.optimizers.Adam(0.001),
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
    )
    return model


def hashed_ids_data():
    """Dicts ``user_id`` / ``movie_id`` of int64 IDs between 2**24 and 2**31, most of which float32 cannot
    hold (a cast to float32 changes them, and so their hash bins); float32 ratings in [0, 5], one column."""
    user, movie, rating = _ratings(7, RATINGS["users"], RATINGS["movies"])
    rng = np.random.default_rng(7)
    user_ids = rng.integers(2**24, 2**31, size=RATINGS["users"], dtype=np.int64)
    movie_ids = rng.integers(2**24, 2**31, size=RATINGS["movies"], dtype=np.int64)
    return _split(N_TRAIN, {"user_id": user_ids[user], "movie_id": movie_ids[movie]}, rating * 5)


def mixed_precision_mlp():
    """Dense → Dense (relu) → Dense logits computing in float16 (variables in float32), a float32 softmax
    Activation as the output; sparse categorical cross-entropy, RMSprop under a LossScaleOptimizer, accuracy.

    From the "Mixed precision" guide by The TensorFlow Authors, https://www.tensorflow.org/guide/mixed_precision
    (keras.io has no example of it; its API page is https://keras.io/api/mixed_precision/) — 16 units instead of
    4096 on 32 features instead of 784.  The guide sets the global policy "mixed_float16"; here each layer gets it
    as its ``dtype``, so the global policy (and every other model) stays float32.  ``compile`` wraps the optimizer
    in a LossScaleOptimizer only when the model's own policy is mixed (under the guide's global policy it is), so
    the factory wraps it itself.
    """
    keras = _keras()
    layers = keras.layers
    mixed = keras.mixed_precision.Policy("mixed_float16")
    inputs = keras.Input(shape=(32,), name="digits")
    x = layers.Dense(16, activation="relu", name="dense_1", dtype=mixed)(inputs)
    x = layers.Dense(16, activation="relu", name="dense_2", dtype=mixed)(x)
    x = layers.Dense(10, name="dense_logits", dtype=mixed)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.mixed_precision.LossScaleOptimizer(keras.optimizers.RMSprop()),
        metrics=["accuracy"],
    )
    return model


def mixed_precision_mlp_data():
    """32 float32 features of 10 noisy class patterns (a stand-in for flattened digits); int64 labels."""
    return _patterns(8, (32,), 10)
