"""The training input pipeline: tf.data batches gathered from arrays, scaled and augmented per batch.

Kept apart from `zoo.training.fit`, which decides what to train; this decides how the
examples reach the step. Everything here is seeded and stateless, so that a seed
gives the same batches on every run.
"""

from __future__ import annotations

import functools

import numpy as np


def random_crop_tokens(ids, min_fraction: float, seed):
    """Keep a random run of each text's tokens, at least `min_fraction` of them, moved to the front.

    Texts are token ids padded with 0 at the end. A text read through a random window
    is still that text's class, and the model, which averages over the tokens it is
    given, learns not to lean on a few words that happen to be in every training copy.
    """
    import tensorflow as tf

    length = tf.shape(ids)[1]
    tokens = tf.reduce_sum(tf.cast(ids != 0, tf.float32), axis=1, keepdims=True)
    draws = tf.random.stateless_uniform([tf.shape(ids)[0], 2], seed=seed)
    keep = tf.maximum(tf.math.ceil(tokens * (min_fraction + (1 - min_fraction) * draws[:, :1])), 1.0)
    start = tf.floor(draws[:, 1:] * (tokens - keep + 1))
    position = tf.range(length)[None, :]
    picked = tf.gather(ids, tf.minimum(tf.cast(start, tf.int32) + position, length - 1), batch_dims=1)
    return tf.where(position < tf.cast(keep, tf.int32), picked, tf.zeros_like(picked))


def feed(prep, x):
    """What a pipeline holds and the function that turns its batches into model inputs: uint8
    images as they are, scaled batch by batch (bit for bit what `prep(x)` gives); else `prep(x)`."""
    if prep.kind == "image" and x.dtype == np.uint8:
        return x, prep.in_graph
    return prep(x), None


def batches(x, y, batch_size: int, *, prep, shuffle_seed: int | None, shift: int = 0, crop: float = 0.0,
            preset=None):
    """Batches of (prep(x), y), reshuffled every epoch when a seed is given, images shifted (or drawn
    from an augmentation preset, zoo.data.augment) and texts cropped if asked.

    Shuffles the indices and gathers whole batches from the arrays, as Keras does for NumPy
    input: shuffling the examples themselves through a buffer copies every image once more
    per epoch and cost LeNet-5 about a sixth of its training throughput here. uint8 images
    stay uint8 until a batch is gathered (see `feed`): a quarter of the memory, and start-up
    skips scaling them all at once.
    """
    import tensorflow as tf

    x, transform = feed(prep, x)
    transform = transform or (lambda batch: batch)
    order = tf.data.Dataset.range(len(y))
    if shuffle_seed is not None:
        order = order.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    arrays = tf.data.Dataset.from_tensors((x, y)).repeat()
    ds = tf.data.Dataset.zip((order.batch(batch_size), arrays)).map(
        lambda index, xy: (transform(tf.gather(xy[0], index)), tf.gather(xy[1], index)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    from zoo.data import augment as presets

    augment = (functools.partial(presets.apply, p=preset) if preset is not None
               else functools.partial(presets.random_shift, max_shift=shift) if shift
               else functools.partial(random_crop_tokens, min_fraction=crop) if crop else None)
    if augment is not None:  # stateless draws, one seed pair per batch: repeatable from --seed
        seeds = tf.data.Dataset.random(seed=shuffle_seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, seed: (augment(batch[0], seed=seed), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
