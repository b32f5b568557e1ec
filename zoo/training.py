"""Training: `zoo.train(model, ...)` fits a registry model on real data and writes a run folder.

The run is built in `<out>/<run>.partial/` (checkpoints for --resume, the
epoch log) and moved into place as `<out>/<run>/` only when it is complete, so
a crash or Ctrl-C never leaves a half-written model where a good one was.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo import runs
from zoo.errors import ConfigError, Interrupted, ZooError
from zoo.registry import get_entry

PARTIAL = ".partial"
CONFIG_FILE = "train_config.json"  # in the .partial folder: what --resume continues with
_NOT_SAVED = ("resume", "verbose", "callbacks", "overwrite", "name", "out")


@dataclass
class TrainConfig:
    """What `zoo train` takes; None means the model's recipe decides."""

    model: str
    data: str | None = None  # dataset name (mnist, imdb) or path; None: the model's default dataset
    epochs: int | None = None  # passes over the training split
    batch_size: int | None = None  # examples per step
    lr: float | None = None  # peak learning rate of Adam (cosine decay to 1% of it)
    seed: int = 0  # the same seed gives the same metrics on the same CPU
    name: str | None = None  # run name; None: the model name, then <model>-2, -3...
    out: str | None = None  # output folder; None: $ZOO_HOME or ./saved_models
    resume: bool = False  # continue an interrupted run from its last finished epoch
    patience: int | None = None  # stop after this many epochs without a better validation loss
    val_split: float = 0.1  # fraction of the training split held out for validation (stratified)
    limit: int | None = None  # train on the first N training examples only
    text_column: str | None = None  # CSV: the text column (default: detected)
    label_column: str | None = None  # CSV: the label column (default: detected)
    overwrite: bool = False  # replace an existing run of the same name
    tensorboard: bool = False  # also write TensorBoard logs to <run>/logs
    verbose: int | None = None  # Keras progress: 0 silent, 1 bar, 2 a line per epoch; None: 1 on a terminal
    weight_decay: float | None = None  # decoupled weight decay of AdamW; 0: plain Adam; None: recipe
    augment: int | None = None  # images: random shifts of up to N pixels each way; 0 off; None: recipe
    model_args: dict[str, Any] = field(default_factory=dict)  # overrides for create_model
    callbacks: list = field(default_factory=list)  # extra Keras callbacks, run after zoo's own
    steps_per_execution: int = 32  # training steps per call into TensorFlow (fewer Python round trips)


@dataclass
class Run:
    """A finished run folder."""

    path: Path
    card: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def metrics(self) -> dict:
        return self.card["metrics"]

    def load_model(self):
        return runs.load_model(self.path)

    @classmethod
    def open(cls, target: str | os.PathLike, out=None) -> "Run":
        folder = runs.find_run(target, out)
        return cls(folder, json.loads((folder / runs.CARD_FILE).read_text()))


def _check(config: TrainConfig) -> None:
    for key in ("epochs", "batch_size", "limit", "patience"):
        value = getattr(config, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key.replace('_', '-')} must be a whole number >= 1, got {value!r}")
    if config.lr is not None and (isinstance(config.lr, bool) or not isinstance(config.lr, (int, float))
                                  or not 0 < config.lr < 10):
        raise ConfigError(f"lr must be a number in (0, 10), got {config.lr!r}")
    if not 0 <= config.val_split < 1:
        raise ConfigError(f"val-split must be in [0, 1), got {config.val_split!r}")


def _choose_name(config: TrainConfig, model_name: str, root: Path) -> str:
    if config.name is not None:
        runs.run_dir(config.name, root)  # validates
        if config.name.endswith(PARTIAL):
            raise ConfigError(f"invalid run name {config.name!r}: it may not end in '{PARTIAL}'")
        return config.name
    if config.resume:
        partials = sorted(root.glob(f"{model_name}*{PARTIAL}"), key=lambda p: p.stat().st_mtime)
        if not partials:
            raise ConfigError(f"no interrupted {model_name} run to resume under {root}/")
        return partials[-1].name[: -len(PARTIAL)]
    name, n = model_name, 1
    while (root / name).exists() or (root / f"{name}{PARTIAL}").exists():
        n += 1
        name = f"{model_name}-{n}"
    return name


def _resumable(config: TrainConfig) -> dict:
    return {key: value for key, value in asdict(config).items() if key not in _NOT_SAVED}


def _saved_config(config: TrainConfig, root: Path, name: str) -> TrainConfig:
    """On --resume, the options the run was started with (the data, epochs...), not today's flags."""
    saved = root / f"{name}{PARTIAL}" / CONFIG_FILE
    if not saved.is_file():
        return config
    options = json.loads(saved.read_text())
    if get_entry(options["model"]).name != get_entry(config.model).name:
        raise ConfigError(f"run '{name}' trains {options['model']}, not {config.model}")
    return replace(config, **options)


def _prepare_folder(config: TrainConfig, root: Path, name: str) -> Path:
    final, partial = root / name, root / f"{name}{PARTIAL}"
    if config.resume:
        if not partial.is_dir():
            done = " (it finished)" if final.is_dir() else ""
            raise ConfigError(f"nothing to resume: no interrupted run '{name}' under {root}/{done}")
        return partial
    if final.exists() and not config.overwrite:
        raise ConfigError(f"run '{name}' already exists in {root}/; pass --overwrite or another --name")
    if partial.exists():
        if not config.overwrite:
            raise ConfigError(
                f"run '{name}' was interrupted; pass --resume to continue it or --overwrite to start over"
            )
        shutil.rmtree(partial)
    try:
        partial.mkdir(parents=True)
    except OSError as exc:
        raise ZooError(f"cannot write to the output folder {root}/: {exc.strerror}; choose another with --out") from None
    return partial


def _seed_everything(seed: int) -> None:
    from zoo.backend import keras

    keras().utils.set_random_seed(seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def random_shift(images, max_shift: int, seed: int | None):
    """Move each image by its own random whole-pixel offset (up to max_shift each way), zero fill.

    Two gathers on a padded batch: far cheaper on a CPU than an interpolating
    `RandomTranslation`, and whole pixels are what digit augmentation needs.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], seed=seed, minval=0, maxval=2 * max_shift + 1,
                                          dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def _pipeline(x, y, batch_size: int, *, shuffle_seed: int | None, shift: int = 0):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if shift:
        seeds = tf.data.Dataset.random(seed=shuffle_seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda batch, seed: (random_shift(batch[0], shift, seed), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def _load_data(config: TrainConfig, entry):
    from zoo.data import load_dataset

    spec = config.data or entry.dataset
    if spec is None:
        raise ConfigError(f"{entry.name} has no default dataset; pass --data PATH (a folder of class sub-folders)")
    kind = entry.task
    image_shape = None
    if kind == "image":
        image_shape = tuple(config.model_args.get("input_shape", entry.defaults["input_shape"]))
    return spec, load_dataset(
        spec, kind=kind, image_shape=image_shape,
        text_column=config.text_column, label_column=config.label_column,
    )


def train(model: str, **options) -> Run:
    """Train a registry model and write its run folder.

    Args:
        model: registry name or alias.
        **options: the fields of `TrainConfig` (epochs, batch_size, lr, seed, data, name, ...).

    Returns:
        The finished `Run` (its folder, card and metrics).

    Raises:
        ConfigError, DataError: bad options or data. Interrupted: Ctrl-C; resume with resume=True.
    """
    return train_config(TrainConfig(model=model, **options))


def train_config(config: TrainConfig) -> Run:
    from zoo.preprocess import ImagePreprocessing, TextPreprocessing
    from zoo.registry import create_model

    _check(config)
    entry = get_entry(config.model)
    root = runs.output_root(config.out)
    name = _choose_name(config, entry.name, root)
    if config.resume:
        config = _saved_config(config, root, name)
    recipe = {"epochs": 10, "batch_size": 128, "lr": 1e-3, **entry.recipe}
    epochs = config.epochs or recipe["epochs"]
    batch_size = config.batch_size or recipe["batch_size"]
    lr = float(config.lr or recipe["lr"])
    weight_decay = recipe.get("weight_decay", 0.0) if config.weight_decay is None else config.weight_decay

    spec, dataset = _load_data(config, entry)
    x_train, y_train = dataset.x_train, dataset.y_train
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    n_classes = len(dataset.labels)
    if len(np.unique(y_train)) < 2:
        raise ConfigError(f"the first {len(y_train)} training examples hold one class; raise --limit")
    val_idx = np.zeros(0, dtype=np.int64)
    if config.val_split > 0:
        from zoo.data import stratified_split

        keep_idx, val_idx = stratified_split(y_train, config.val_split, config.seed)
        x_val, y_val = x_train[val_idx], y_train[val_idx]
        x_train, y_train = x_train[keep_idx], y_train[keep_idx]
    if batch_size > len(y_train):
        raise ConfigError(f"batch-size {batch_size} is larger than the {len(y_train)} training examples")

    model_args = dict(config.model_args)
    if "num_classes" in entry.defaults:
        model_args["num_classes"] = n_classes
    if dataset.kind == "text":
        max_tokens = model_args.get("vocab_size", entry.defaults["vocab_size"])
        length = model_args.get("sequence_length", recipe.get("sequence_length", entry.defaults["sequence_length"]))
        prep = TextPreprocessing.adapt(x_train, max_tokens, length)
        model_args.update(vocab_size=len(prep.vocabulary), sequence_length=length)
    else:
        prep = ImagePreprocessing(dataset.x_train.shape[1:])

    _seed_everything(config.seed)
    keras_model = create_model(entry.name, **model_args)
    folder = _prepare_folder(config, root, name)
    if not config.resume:
        (folder / CONFIG_FILE).write_text(json.dumps(_resumable(config), indent=2) + "\n")
    xs = {"train": prep(x_train), "test": prep(dataset.x_test)}
    if len(val_idx):
        xs["val"] = prep(x_val)
    binary = keras_model.output.shape[-1] == 1
    cast = (lambda y: y.astype(np.float32)[:, None]) if binary else (lambda y: y.astype(np.int32))

    from zoo.backend import keras

    k = keras()
    steps = -(-len(y_train) // batch_size)
    schedule = k.optimizers.schedules.CosineDecay(lr, decay_steps=steps * epochs, alpha=0.01)
    keras_model.compile(
        optimizer=k.optimizers.AdamW(schedule, weight_decay=weight_decay) if weight_decay
        else k.optimizers.Adam(schedule),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
    )
    shift = recipe.get("shift", 0) if config.augment is None else config.augment
    shift = shift if dataset.kind == "image" else 0
    train_ds = _pipeline(xs["train"], cast(y_train), batch_size, shuffle_seed=config.seed, shift=shift)
    val_ds = _pipeline(xs["val"], cast(y_val), 1024, shuffle_seed=None) if "val" in xs else None
    checkpoints = folder / "checkpoints"
    monitor = "val_loss" if val_ds is not None else "loss"
    callbacks = [
        k.callbacks.BackupAndRestore(str(checkpoints / "backup"), delete_checkpoint=False),
        k.callbacks.ModelCheckpoint(str(checkpoints / "best.weights.h5"), monitor=monitor,
                                    save_best_only=True, save_weights_only=True),
        k.callbacks.CSVLogger(str(folder / "history.csv"), append=config.resume),
    ]
    if config.patience:
        callbacks.append(k.callbacks.EarlyStopping(monitor=monitor, patience=config.patience))
    if config.tensorboard:
        callbacks.append(k.callbacks.TensorBoard(str(folder / "logs")))
    callbacks += list(config.callbacks)
    verbose = config.verbose if config.verbose is not None else (1 if _tty() else 2)

    started = time.perf_counter()
    try:
        history = keras_model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                                  callbacks=callbacks, verbose=verbose, shuffle=False)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; finished epochs are kept in {folder}/ - continue with: "
            f"zoo train {entry.name} --name {name} --resume"
        ) from None
    seconds = time.perf_counter() - started
    epochs_run = len(history.history.get("loss", []))

    if (checkpoints / "best.weights.h5").is_file():
        keras_model.load_weights(checkpoints / "best.weights.h5")
    outputs = keras_model.predict(xs["test"], batch_size=1024, verbose=0)
    from zoo.metrics import classification_metrics

    metrics = classification_metrics(dataset.y_test, outputs, dataset.labels)
    rows = _history_rows(folder / "history.csv")
    card = {
        "run": name,
        "model": entry.name,
        "model_args": model_args,
        "task": f"{dataset.kind} classification",
        "dataset": {**dataset.describe(), "spec": str(spec), "train_used": int(len(y_train)),
                    "validation_examples": int(len(val_idx)), "validation_split": config.val_split,
                    "limit": config.limit},
        "preprocessing": prep.to_dict(),
        "labels": dataset.labels,
        "hyperparameters": {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                            "optimizer": f"adamw, weight decay {weight_decay}" if weight_decay else "adam",
                            "schedule": "cosine decay to 1% over all steps", "patience": config.patience,
                            "augment_shift": shift,
                            "steps_per_execution": config.steps_per_execution},
        "seed": config.seed,
        "metrics": metrics,
        "training": {
            "epochs": len(rows) or epochs_run,
            "epochs_this_session": epochs_run,
            "seconds": round(seconds, 2),
            "samples_per_second": round(len(y_train) * epochs_run / seconds, 1) if seconds > 0 else None,
            "stopped_early": bool(config.patience) and len(rows) < epochs,
            "resumed": config.resume,
            "best_checkpoint_monitor": monitor,
        },
        "versions": _versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        final = _write_run(folder, root / name, keras_model, prep, card, rows, entry.name, dataset)
    except OSError as exc:
        raise ZooError(
            f"could not write run '{name}': {exc.strerror or exc}; nothing was replaced, and the trained "
            f"epochs are kept in {folder}/ - free some space, then: zoo train {entry.name} --name {name} --resume"
        ) from None
    return Run(final, card)


def _write_run(folder: Path, final: Path, keras_model, prep, card: dict, rows, model_name: str, dataset) -> Path:
    """Write the run's files into its .partial folder, then move it into place in one rename."""
    from zoo.plots import plot_confusion, plot_curves
    from zoo.preprocess import TextPreprocessing

    metrics = card["metrics"]
    keras_model.save(folder / runs.MODEL_FILE)
    if isinstance(prep, TextPreprocessing):
        prep.save_vocabulary(folder)
    (folder / runs.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    plot_curves(rows, folder / "curves.png", title=f"{final.name}: {model_name} on {dataset.name}")
    plot_confusion(metrics["confusion_matrix"], dataset.labels, folder / "confusion.png",
                   title=f"{final.name}: test accuracy {metrics['test_accuracy']:.2%}")
    published = runs.publish(folder, final)
    # only now: until the run is in place, --resume needs the epoch state and the options
    shutil.rmtree(published / "checkpoints", ignore_errors=True)
    (published / CONFIG_FILE).unlink(missing_ok=True)
    return published


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


def _history_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    def number(value):
        try:
            return float(value)
        except (TypeError, ValueError):  # CSVLogger writes "NA" for a metric an epoch lacks
            return None

    with path.open(newline="") as f:
        return [{k: number(v) for k, v in row.items() if number(v) is not None} for row in csv.DictReader(f)]


def _versions() -> dict:
    import keras
    import tensorflow as tf

    from zoo import __version__

    return {"zoo": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}
