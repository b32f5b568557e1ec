"""Training: `zoo.train(model, ...)` fits a registry model on real data and writes a run folder.

The run is built in `<out>/<run>.partial/` (checkpoints for --resume, the
epoch log) and moved into place as `<out>/<run>/` only when it is complete, so
a crash or Ctrl-C never leaves a half-written model where a good one was.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import datetime as _dt
import functools
import json
import math
import os
import platform
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo import runs
from zoo.card import Card
from zoo.targets import Run
from zoo.errors import ConfigError, DamagedFileError, Interrupted, ZooError, ZooWarning
from zoo.models.registry import get_entry

PARTIAL = ".partial"
CONFIG_FILE = runs.CONFIG_FILE  # in the .partial folder: what --resume continues with
BEST = "best.weights.h5"  # in checkpoints/: the weights of the best epoch so far
WORKERS = ".workers"  # under the output folder: the resume state of the non-chief workers of a cluster
# what a registry entry's recipe does not say
RECIPE_DEFAULTS = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "shift": 0, "crop": 0.0, "weight_decay": 0.0,
                   "label_smoothing": 0.0}
# what --resume takes from today's command line rather than from the interrupted run
_NOT_SAVED = ("resume", "verbose", "callbacks", "overwrite", "name", "out", "strategy", "probe")


@dataclass
class TrainConfig:
    """What `zoo train` takes; None means the model's recipe decides."""

    model: Any  # a registry name or alias; or a model file (.keras, .h5) or keras.Model to fine-tune
    data: str | None = None  # dataset name (mnist, imdb) or path; None: the model's default dataset
    epochs: int | None = None  # passes over the training split
    batch_size: int | None = None  # examples per step
    lr: float | None = None  # peak learning rate of Adam (cosine decay to 1% of it)
    seed: int = 0  # the same seed gives the same metrics on the same CPU
    name: str | None = None  # run name; None: the model name, then <model>-2, -3...
    out: str | None = None  # output folder; None: $ZOO_HOME or ./saved_models
    resume: bool = False  # continue an interrupted run from its last finished epoch
    patience: int | None = None  # stop after this many epochs without a better validation loss
    until: float | None = None  # stop after the first epoch whose validation accuracy reaches this (0-1]
    val_split: float = 0.1  # fraction of the training split held out for validation (stratified)
    limit: int | None = None  # train on the first N training examples only
    text_column: str | None = None  # CSV: the text column (default: detected)
    label_column: str | None = None  # CSV: the label column (default: detected)
    overwrite: bool = False  # replace an existing run of the same name
    tensorboard: bool = False  # also write TensorBoard logs to <run>/logs
    verbose: int | None = None  # Keras progress: 0 silent, 1 bar, 2 a line per epoch; None: 1 on a terminal
    weight_decay: float | None = None  # decoupled weight decay of AdamW; 0: plain Adam; None: recipe
    augment: int | str | None = None  # images: random shifts of up to N pixels each way, or a preset's name
    # (zoo.data.augment: "handwriting"); 0 off; None: recipe
    crop: float | None = None  # texts: train on a random run of at least this fraction of each text; 0 off; None: recipe
    label_smoothing: float | None = None  # targets 1 - F on the true class plus F spread over all; 0 off; None: recipe
    model_args: dict[str, Any] = field(default_factory=dict)  # overrides for create_model
    callbacks: list = field(default_factory=list)  # extra Keras callbacks, run after zoo's own
    steps_per_execution: int = 32  # training steps per call into TensorFlow (fewer Python round trips)
    strategy: str = "auto"  # auto | default | mirrored | multiworker (zoo.training.distribute); --batch-size is per replica
    mixed_precision: bool = False  # compute in float16 on a GPU, bfloat16 on a CPU; weights and exports float32
    calibrate: bool = True  # fit a temperature on the validation split and fold it into the output layer
    custom_objects: list | None = None  # a model file's custom classes: module:Name (zoo.models.adopted)
    normalize: str | None = None  # a model file's pixel scaling: scale, none, MEAN,STD (default: read from it, else scale)
    vocab: str | None = None  # a text model file's vocabulary, one token a line
    probe: bool = True  # measure the batch split on the first training of a model on this CPU (zoo.training.probe)




def _check(config: TrainConfig) -> None:
    """The options' ranges, as zoo.ranges owns them (the command line's Click types are built from
    the same table)."""
    from zoo import ranges

    from zoo.data.augment import parse

    for key in ("seed", "epochs", "batch_size", "limit", "patience", "until", "lr", "val_split", "crop",
                "label_smoothing"):
        ranges.check(key, getattr(config, key), required=key in ("seed", "val_split"))
    augment = parse(config.augment)
    if not isinstance(augment, str):  # a preset's name, else a number of pixels
        ranges.check("augment", augment)


def _choose_name(config: TrainConfig, model_name: str, root: Path, taken=frozenset()) -> str:
    if config.name is not None:
        runs.run_dir(config.name, root)  # validates
        if config.name.endswith(PARTIAL):
            raise ConfigError(f"invalid run name {config.name!r}: it may not end in '{PARTIAL}'")
        from zoo.models import pretrained

        if pretrained.find(config.name) is not None:
            raise ConfigError(f"'{config.name}' names a pretrained model; choose another --name")
        return config.name
    if config.resume:
        partials = sorted(root.glob(f"{model_name}*{PARTIAL}"), key=lambda p: p.stat().st_mtime)
        if not partials:
            raise ConfigError(f"no interrupted {model_name} run to resume under {root}/")
        return partials[-1].name[: -len(PARTIAL)]
    name, n = model_name, 1
    while name in taken or (root / name).exists() or (root / f"{name}{PARTIAL}").exists():
        n += 1
        name = f"{model_name}-{n}"
    return name


def _resumable(config: TrainConfig) -> dict:
    model = config.model
    if not isinstance(model, (str, os.PathLike)):  # a keras.Model in memory: its name is all a file can hold
        model = getattr(model, "name", "model")
    elif _is_model_file(model):
        model = str(Path(model).resolve())
    plain = replace(config, model=None)
    return {**{key: value for key, value in asdict(plain).items() if key not in _NOT_SAVED}, "model": str(model)}


def _is_model_file(model) -> bool:
    from zoo.models.adopted import file_format

    return isinstance(model, (str, os.PathLike)) and Path(model).exists() and file_format(Path(model)) is not None


def _entry(config: TrainConfig):
    """The registry entry, or a model file's (zoo.models.adopted.FileEntry: fine-tuning its weights)."""
    from zoo.models.adopted import file_entry

    if _is_model_file(config.model) or not isinstance(config.model, str):
        return file_entry(config.model, config.custom_objects, config.vocab)
    return get_entry(config.model)


def _build(entry, model_args: dict):
    return entry.builder(**entry.validate(model_args))


def _saved_config(config: TrainConfig, root: Path, name: str) -> TrainConfig:
    """On --resume, the options the run was started with (the data, epochs...), not today's flags."""
    saved = root / f"{name}{PARTIAL}" / CONFIG_FILE
    if not saved.is_file():
        return config
    options = runs.read_json(saved, required=("model",),
                             fix="it holds the options to resume with; start over with --overwrite")
    if _entry(replace(config, model=options["model"])).name != _entry(config).name:
        raise ConfigError(f"run '{name}' trains {options['model']}, not {config.model}")
    return replace(config, **{**options, "model": config.model})


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
    """Seed Python, NumPy and TensorFlow.

    On a CPU that is enough for the same metrics from the same seed (the tests check it):
    the kernels zoo's models use there are deterministic. TensorFlow's op-determinism mode
    would cost about a fifth of LeNet-5's training throughput on the 2-core machine here, so
    it is only turned on with ZOO_DETERMINISTIC=1 (for GPUs, whose kernels are not).
    """
    from zoo.backend import keras

    keras().utils.set_random_seed(seed)
    if os.environ.get("ZOO_DETERMINISTIC", "") not in ("", "0"):
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _load_data(config: TrainConfig, entry):
    from zoo.data.datasets import load_dataset

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


def train(model, **options) -> Run:
    """Train a registry model, or fine-tune a model file, and write its run folder.

    Args:
        model: registry name or alias; or a `.keras` / `.h5` file or a `keras.Model`, trained
            from its own weights with zoo's recipe (custom_objects=, vocab= as the file needs).
        **options: the fields of `TrainConfig` (epochs, batch_size, lr, seed, data, name, ...).

    Returns:
        The finished `Run` (its folder, card and metrics).

    Raises:
        ConfigError, DataError: bad options or data. Interrupted: Ctrl-C; resume with resume=True.
    """
    return train_config(TrainConfig(model=model, **options))


@dataclass(frozen=True)
class _Plan:
    """The hyperparameters a run trains with, after the recipe and the replicas are applied."""

    epochs: int
    batch_size: int  # per replica: what --batch-size says
    global_batch_size: int  # per step, all replicas together
    lr: float  # what --lr (or the recipe) says, for one replica
    scaled_lr: float  # what the optimizer uses: lr x replicas (the linear scaling rule)
    weight_decay: float
    shift: int  # image augmentation: random shifts of up to this many pixels
    preset: Any  # image augmentation drawn from a named preset (zoo.data.augment.Preset), or None
    crop: float  # text augmentation: the smallest fraction of a text a random window keeps
    label_smoothing: float
    steps_per_execution: int
    mixed_precision: str | None
    cpu_shards: int  # each batch split into this many shards computed side by side (zoo.training.sharding)

    def to_dict(self, patience) -> dict:
        return {"epochs": self.epochs, "batch_size": self.batch_size,
                "global_batch_size": self.global_batch_size, "lr": self.lr, "scaled_lr": self.scaled_lr,
                "optimizer": f"adamw, weight decay {self.weight_decay}" if self.weight_decay else "adam",
                "schedule": "cosine decay to 1% over all steps", "patience": patience,
                "augment_shift": self.shift, "augment_crop": self.crop,
                "augment_preset": self.preset.name if self.preset else None,
                **({"augment": self.preset.to_dict()} if self.preset else {}),
                "label_smoothing": self.label_smoothing, "steps_per_execution": self.steps_per_execution,
                "mixed_precision": self.mixed_precision}


def _plan(config: TrainConfig, entry, kind: str, dist) -> _Plan:
    from zoo.training.distribute import mixed_policy
    from zoo.training.sharding import shards_for

    recipe = {**RECIPE_DEFAULTS, **entry.recipe}

    def chosen(option, key):  # the command line's value, else the recipe's (0 is a choice: "off")
        return recipe[key] if option is None else option

    from zoo.data.augment import parse, preset

    batch_size = config.batch_size or recipe["batch_size"]
    lr = float(config.lr or recipe["lr"])
    augment = parse(chosen(config.augment, "shift")) if kind == "image" else 0
    return _Plan(
        epochs=config.epochs or recipe["epochs"],
        batch_size=batch_size,
        global_batch_size=batch_size * dist.replicas,
        lr=lr,
        scaled_lr=lr * dist.replicas,
        weight_decay=chosen(config.weight_decay, "weight_decay"),
        shift=0 if isinstance(augment, str) else augment,
        preset=preset(augment) if isinstance(augment, str) else None,
        crop=float(chosen(config.crop, "crop")) if kind == "text" else 0.0,
        label_smoothing=float(chosen(config.label_smoothing, "label_smoothing")),
        # Keras 3.15 cannot loop several steps per call under a tf.distribute strategy
        steps_per_execution=1 if dist.distributed else config.steps_per_execution,
        mixed_precision=mixed_policy(config.mixed_precision),
        cpu_shards=shards_for(batch_size, dist.cpu_shards),
    )


@dataclass
class _Splits:
    x_train: Any
    y_train: Any
    x_val: Any = None
    y_val: Any = None

    @property
    def validation_examples(self) -> int:
        return 0 if self.y_val is None else len(self.y_val)


def _split(config: TrainConfig, dataset, plan: _Plan) -> _Splits:
    x_train, y_train = dataset.x_train, dataset.y_train
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    if len(np.unique(y_train)) < 2:
        raise ConfigError(f"the first {len(y_train)} training examples hold one class; raise --limit")
    splits = _Splits(x_train, y_train)
    if config.val_split > 0:
        from zoo.data.datasets import stratified_split

        keep_idx, val_idx = stratified_split(y_train, config.val_split, config.seed)
        splits = _Splits(x_train[keep_idx], y_train[keep_idx], x_train[val_idx], y_train[val_idx])
    if plan.global_batch_size > len(splits.y_train):
        per = f" ({plan.batch_size} x {plan.global_batch_size // plan.batch_size} replicas)" \
            if plan.global_batch_size != plan.batch_size else ""
        raise ConfigError(f"batch-size {plan.global_batch_size}{per} is larger than the "
                          f"{len(splits.y_train)} training examples")
    return splits


def _preprocessing(config: TrainConfig, entry, dataset, x_train):
    """The model's arguments for this dataset and the preprocessing that feeds it."""
    from zoo.data.preprocess import ImagePreprocessing, TextPreprocessing

    recipe = entry.recipe
    model_args = dict(config.model_args)
    if "num_classes" in entry.defaults:
        model_args["num_classes"] = len(dataset.labels)
    if dataset.kind == "text" and entry.recipe.get("vocabulary"):  # a model file's own vocabulary
        prep = TextPreprocessing(entry.recipe["vocabulary"], entry.defaults["input_shape"][0])
    elif dataset.kind == "text":
        max_tokens = model_args.get("vocab_size", entry.defaults["vocab_size"])
        length = model_args.get("sequence_length", recipe.get("sequence_length", entry.defaults["sequence_length"]))
        prep = TextPreprocessing.adapt(x_train, max_tokens, length)
        model_args.update(vocab_size=len(prep.vocabulary), sequence_length=length)
    else:
        from zoo.data.digits import CANVAS, in_mnist_form

        # MNIST's digits have one form (zoo.data.digits); a photo is brought into it before prediction,
        # for data that is in it: decided by the pixels, not the name (Fashion-MNIST is not)
        mnist = dataset.x_train.shape[1:] == (CANVAS, CANVAS, 1) and in_mnist_form(dataset.x_train)
        if config.normalize is not None or "normalize" in recipe:  # a model file: as said, or as read from it
            option, reason = (config.normalize, None) if config.normalize is not None else recipe["normalize"]
            prep = ImagePreprocessing.from_option(dataset.x_train.shape[1:], option, reason=reason)
            prep.normalize = "mnist" if mnist else None
        else:
            prep = ImagePreprocessing(dataset.x_train.shape[1:], normalize="mnist" if mnist else None)
    return model_args, prep


def _targets(y: np.ndarray, classes: int, one_hot: bool) -> np.ndarray:
    """Labels as the loss takes them: (N, 1) floats for a sigmoid, one-hot rows when the
    softmax's targets are smoothed, else class ids."""
    if classes == 1:
        return y.astype(np.float32)[:, None]
    if one_hot:
        return np.eye(classes, dtype=np.float32)[y]
    return y.astype(np.int32)


def _loss(plan: _Plan, binary: bool):
    from zoo.backend import keras

    k = keras()
    if binary:
        return k.losses.BinaryCrossentropy(label_smoothing=plan.label_smoothing)
    if plan.label_smoothing:  # smoothing needs one-hot targets (see _targets)
        return k.losses.CategoricalCrossentropy(label_smoothing=plan.label_smoothing)
    return k.losses.SparseCategoricalCrossentropy()


def _compile(keras_model, plan: _Plan, steps_per_epoch: int, binary: bool) -> None:
    from zoo.backend import keras

    k = keras()
    schedule = k.optimizers.schedules.CosineDecay(plan.scaled_lr, decay_steps=steps_per_epoch * plan.epochs,
                                                  alpha=0.01)
    keras_model.compile(
        optimizer=k.optimizers.AdamW(schedule, weight_decay=plan.weight_decay) if plan.weight_decay
        else k.optimizers.Adam(schedule),
        loss=_loss(plan, binary),
        metrics=["accuracy"],
        steps_per_execution=plan.steps_per_execution,
    )


def _build_before_fit(trainer, dataset) -> None:
    """Create the optimizer's and the metrics' variables before fit traces the training step.

    Without a tf.distribute strategy Keras creates them inside the first trace, and a
    tf.function that creates variables is traced twice: 1.2-2 s of LeNet-5's start-up here.
    Under a strategy Keras builds them first itself, from a batch's shapes (`_symbolic_build`);
    this does the same from the dataset's element spec, so no batch is drawn and the seeded
    shuffles stay as they are.
    """
    try:
        trainer._symbolic_build(data_batch=dataset.element_spec)
    except (AttributeError, TypeError, ValueError, NotImplementedError) as exc:
        # a speed-up only: a Keras without it, or a model that cannot be built from shapes, trains
        # as before, its first epoch a second or two later; the optimizer is most of the gain
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        warnings.warn(f"the metrics could not be built before training ({type(exc).__name__}: {reason[:120]}); "
                      "they are built in the first step instead, which only makes it slower", ZooWarning,
                      stacklevel=2)
        if not trainer.optimizer.built:
            trainer.optimizer.build(trainer.trainable_variables)


def _callbacks(config: TrainConfig, folder: Path, monitor: str, agree=None) -> list:
    """zoo's callbacks; the epoch log first, so that a kill between two of them repeats an
    epoch (whose duplicate row `_history_rows` drops) rather than loses one."""
    from zoo.backend import keras
    from zoo.training.callbacks import AtomicBackupAndRestore, BestWeights

    k = keras()
    checkpoints = folder / runs.CHECKPOINTS
    so_far = [row[monitor] for row in _history_rows(folder / "history.csv") if monitor in row]
    callbacks = [
        k.callbacks.CSVLogger(str(folder / "history.csv"), append=config.resume),
        BestWeights(checkpoints / BEST, monitor=monitor, best=min(so_far, default=math.inf)),
        AtomicBackupAndRestore(checkpoints / "backup", agree=agree),
    ]
    if config.patience:
        callbacks.append(k.callbacks.EarlyStopping(monitor=monitor, patience=config.patience))
    if config.until:
        from zoo.training.callbacks import Until

        callbacks.append(Until(config.until, "val_accuracy" if monitor == "val_loss" else "accuracy"))
    if config.tensorboard:
        callbacks.append(k.callbacks.TensorBoard(str(folder / "logs")))
    return callbacks + list(config.callbacks)


def _calibrate(config: TrainConfig, keras_model, prep, splits: _Splits) -> dict:
    """Fold a temperature fitted on the validation split into the model (zoo.training.calibration), or
    say why not: nothing is guessed without held-out data."""
    if not config.calibrate:
        return {"method": None, "reason": "turned off (--no-calibrate)"}
    if not splits.validation_examples:
        return {"method": None, "reason": "no validation split (--val-split 0): nothing to fit a temperature "
                                          "on, so the probabilities are the model's own"}
    from zoo.training.calibration import calibrate

    return calibrate(keras_model, prep(splits.x_val), splits.y_val)


def _deployable(keras_model, entry, model_args: dict, plan: _Plan, dist):
    """The model to test and save: float32 and free of any strategy, whatever trained it.

    Mixed-precision layers would carry their float16/bfloat16 compute into model.keras and
    every export; a model built under a strategy holds distributed variables. A fresh float32
    copy with the trained weights has neither.
    """
    if plan.mixed_precision is None and not dist.distributed:
        return keras_model
    from zoo.training.distribute import precision

    with precision("float32"):
        plain = _build(entry, model_args)
    plain.set_weights([np.asarray(w) for w in keras_model.get_weights()])
    return plain


def train_config(config: TrainConfig) -> Run:
    """Train under the run's lock (zoo.locks): another process that writes the same run is
    refused at once, and Ctrl-C at any point says what was kept and how to go on."""
    from zoo.training import probe
    from zoo.training.distribute import make_distribution

    _check(config)
    entry = _entry(config)
    root = runs.output_root(config.out)
    batch_size = config.batch_size or {**RECIPE_DEFAULTS, **entry.recipe}["batch_size"]  # as _plan takes it
    probe_key = probe.cache_entry(entry.name, batch_size,
                                  "mixed precision" if config.mixed_precision else None)
    speed = probe.decide(probe_key, config.probe)  # the cached choice, read before TensorFlow's pools are sized
    dist = make_distribution(config.strategy, speed.shards)  # before any other TensorFlow op
    if dist.cpu_shards < speed.shards:
        why = ("not split: under a tf.distribute strategy each replica takes its batch whole" if dist.distributed
               else "not split: a GPU, or TensorFlow's thread pools were already set in this process")
        speed = probe.Speed(dist.cpu_shards, "no-probe", why)
    if not dist.is_chief:  # other workers keep their own resume state, apart from the chief's runs
        root = root / WORKERS / dist.task
    runs.repair_swaps(root)
    with contextlib.ExitStack() as held:
        name = _claim_name(config, entry.name, root, held)
        given = getattr(entry, "file", {}).get("fine_tuned_from", entry.name)
        hint = f"zoo train {given} --name {name} --resume" + (
            f" --strategy {dist.name}" if dist.distributed else "")
        progress: dict = {}
        try:
            run = _train_locked(config, entry, root, dist, name, hint, progress, speed, probe_key)
        except KeyboardInterrupt:
            raise _interrupted(root / f"{name}{PARTIAL}", hint, progress.get("published")) from None
    if not dist.is_chief:  # once its lock is gone: .workers/<task>/, then .workers/, if empty
        for empty in (root, root.parent):
            with contextlib.suppress(OSError):
                empty.rmdir()
    return run


def _claim_name(config: TrainConfig, model_name: str, root: Path, held: contextlib.ExitStack) -> str:
    """The run's name, with its lock held until `held` closes. A name zoo chose itself moves on to
    the next free one when another process holds or has just taken it; a name the user gave
    (or --resume) is refused with the holder's pid and command."""
    from zoo import locks

    taken: set[str] = set()
    while True:
        name = _choose_name(config, model_name, root, taken)
        lock = contextlib.ExitStack()
        try:
            lock.enter_context(locks.hold(root, name, locks.TRAIN))
        except locks.RunLocked:
            if config.name is not None or config.resume:
                raise
            taken.add(name)
            continue
        chosen = config.name is None and not config.resume
        if chosen and ((root / name).exists() or (root / f"{name}{PARTIAL}").exists()):
            lock.close()  # another process finished a run of this name since it was chosen
            taken.add(name)
            continue
        held.push(lock)
        return name


def _interrupted(partial: Path, hint: str, published: Path | None) -> Interrupted:
    """Ctrl-C: what was kept, and the command that goes on from it."""
    if published is not None:
        return Interrupted(f"interrupted after the run was written to {published}/; it is complete")
    if (partial / runs.CHECKPOINTS / "backup" / "training_metadata.json").is_file():
        return Interrupted(f"interrupted; finished epochs are kept in {partial}/ - continue with: {hint}")
    shutil.rmtree(partial, ignore_errors=True)  # options only, no epoch: nothing worth resuming
    return Interrupted("interrupted before the first epoch finished; nothing was saved")


def _train_locked(config: TrainConfig, entry, root: Path, dist, name: str, resume_hint: str,
                  progress: dict, speed, probe_key: str) -> Run:
    from zoo.training.distribute import agree_on_oldest, cluster_error, cluster_failure, keras_fixes, precision, tf_config
    from zoo.data.pipeline import batches
    from zoo.training.sharding import MIN_SHARD, Sharded

    if config.resume:
        config = _saved_config(config, root, name)
    spec, dataset = _load_data(config, entry)
    plan = _plan(config, entry, dataset.kind, dist)
    splits = _split(config, dataset, plan)
    model_args, prep = _preprocessing(config, entry, dataset, splits.x_train)

    _seed_everything(config.seed)
    with precision(plan.mixed_precision), dist.strategy.scope():
        keras_model = _build(entry, model_args)
    folder = _prepare_folder(config, root, name)  # before the probe: a run that is refused measures nothing
    if not config.resume:
        (folder / CONFIG_FILE).write_text(json.dumps(_resumable(config), indent=2) + "\n")
    classes = keras_model.output.shape[-1]
    binary = classes == 1
    cast = functools.partial(_targets, classes=classes, one_hot=bool(plan.label_smoothing))
    if speed.pending:
        from zoo.training import probe

        if plan.cpu_shards > 1:
            sample = slice(0, plan.batch_size)
            speed = probe.probe(probe_key, speed, plan.cpu_shards, keras_model, prep(splits.x_train[sample]),
                                cast(splits.y_train[sample]), _loss(plan, binary))
            plan = replace(plan, cpu_shards=min(plan.cpu_shards, speed.shards))
        else:  # nothing to choose between, and nothing learned for a later run
            speed = probe.Speed(1, "no-probe", f"batch {plan.batch_size}: too small to split "
                                               f"(at least {MIN_SHARD} examples a shard)")
    with precision(plan.mixed_precision), dist.strategy.scope():
        # fit goes through the trainer, so that every checkpoint is written the same way
        trainer = Sharded(keras_model, plan.cpu_shards)
    with dist.strategy.scope():
        _compile(trainer, plan, -(-len(splits.y_train) // plan.global_batch_size), binary)
    train_ds = batches(splits.x_train, cast(splits.y_train), plan.global_batch_size, prep=prep,
                       shuffle_seed=config.seed, shift=plan.shift, crop=plan.crop,
                       preset=plan.preset)
    val_ds = None
    if splits.validation_examples:
        val_ds = batches(splits.x_val, cast(splits.y_val), max(1024, plan.global_batch_size), prep=prep,
                         shuffle_seed=None)
    if not dist.distributed:  # under a strategy Keras builds them itself
        _build_before_fit(trainer, train_ds)
    monitor = "val_loss" if val_ds is not None else "loss"
    verbose = config.verbose if config.verbose is not None else (1 if _tty() else 2)

    from zoo.training import interrupt

    started = time.perf_counter()
    try:
        with keras_fixes(trainer, dist), interrupt.between_steps() as stop:
            history = trainer.fit(train_ds, validation_data=val_ds, epochs=plan.epochs,
                                  callbacks=[stop, *_callbacks(config, folder, monitor, agree_on_oldest(dist))],
                                  verbose=verbose,
                                  shuffle=False)
    except OSError as exc:  # an epoch's state could not be saved (a full disk): the last one is kept
        raise ZooError(
            f"could not save an epoch's state in {folder}/: {exc.strerror or exc}; the epochs saved before it "
            f"are kept - free some space, then: {resume_hint}"
        ) from None
    except Exception as exc:
        if dist.name == "multiworker" and cluster_failure(exc):
            raise cluster_error(exc, resume_hint, tf_config()) from None
        raise
    seconds = time.perf_counter() - started
    distribution = {**dist.describe(), "cpu_shards": plan.cpu_shards, "speed": speed.to_dict()}
    epochs_run = len(history.history.get("loss", []))
    rows = _history_rows(folder / "history.csv")
    training = {
        "epochs": len(rows) or epochs_run,
        "epochs_this_session": epochs_run,
        "seconds": round(seconds, 2),
        "samples_per_second": round(len(splits.y_train) * epochs_run / seconds, 1) if seconds > 0 else None,
        "stopped_early": bool(config.patience or config.until) and len(rows) < plan.epochs,
        **({"until": config.until} if config.until else {}),
        "resumed": config.resume,
        "best_checkpoint_monitor": monitor,
    }
    if not dist.is_chief:
        shutil.rmtree(folder, ignore_errors=True)
        return Run(None, Card(run=name, model=entry.name, labels=[], preprocessing={}, dataset={},
                              task_in_cluster=dist.task, distribution=distribution, training=training), chief=False)

    best = folder / runs.CHECKPOINTS / BEST
    if best.is_file():
        trainer.load_weights(best)
    training["best_epoch"] = _best_epoch(rows, monitor)
    if training["best_epoch"] is None:
        training["weights"] = f"last epoch: no epoch had a finite {monitor}"
        warnings.warn(f"run '{name}': no epoch had a finite {monitor}, so there is no best epoch; model.keras "
                      "holds the last epoch's weights", ZooWarning, stacklevel=2)
    else:
        training["weights"] = f"best epoch by {monitor}"
    keras_model = _deployable(keras_model, entry, model_args, plan, dist)
    # the pictures are drawn in a thread beside the testing, calibration and saving that follow
    # (1.5-2.5 s of matplotlib on the 2-core machine here, most of it overlapped: TensorFlow's
    # kernels and file writes let go of the GIL)
    with _drawing() as pictures:
        from zoo.training.plots import plot_curves

        curves = pictures.submit(plot_curves, rows, folder / "curves.png", f"{name}: {entry.name} on {dataset.name}")
        x_test = prep(dataset.x_test)
        as_trained = keras_model.predict(x_test, batch_size=1024, verbose=0)
        calibration = _calibrate(config, keras_model, prep, splits)
        outputs = keras_model.predict(x_test, batch_size=1024, verbose=0) if calibration["method"] else as_trained
        from zoo.training.calibration import on_test_split
        from zoo.metrics import classification_metrics

        metrics = classification_metrics(dataset.y_test, outputs, dataset.labels)
        diagrams = on_test_split(calibration, as_trained, outputs, dataset.y_test)
        card = Card(
            run=name, model=entry.name, model_args=model_args, task=f"{dataset.kind} classification",
            dataset=Card.dataset_record(dataset.describe(), spec=str(spec), train_used=int(len(splits.y_train)),
                                        validation_examples=splits.validation_examples,
                                        validation_split=config.val_split, limit=config.limit),
            preprocessing=prep.to_dict(), labels=dataset.labels, hyperparameters=plan.to_dict(config.patience),
            distribution=distribution, seed=config.seed, metrics=metrics, calibration=calibration, training=training,
            versions=_versions(), date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            source=getattr(entry, "file", None) or None,
        )
        try:
            final = _write_run(folder, root / name, keras_model, prep, card, rows, dataset, diagrams, progress,
                               pictures, curves)
        except OSError as exc:
            raise ZooError(
                f"could not write run '{name}': {exc.strerror or exc}; nothing was replaced, and the trained "
                f"epochs are kept in {folder}/ - free some space, then: {resume_hint}"
            ) from None
        return Run(final, card)


@contextlib.contextmanager
def _drawing():
    """One thread for the run's pictures. On Ctrl-C or a failure the pictures not yet begun are
    dropped and nothing waits for the one being drawn: the run is not written anyway."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-plots")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _write_run(folder: Path, final: Path, keras_model, prep, card: Card, rows, dataset, diagrams, progress: dict,
               pictures, curves) -> Path:
    """Write the run's files into its .partial folder, then move it into place in one rename."""
    from zoo.training.plots import plot_confusion, plot_reliability
    from zoo.data.preprocess import TextPreprocessing

    metrics = card.metrics
    drawn = [curves, pictures.submit(plot_confusion, metrics["confusion_matrix"], dataset.labels,
                                     folder / "confusion.png",
                                     title=f"{final.name}: test accuracy {metrics['test_accuracy']:.2%}"),
             pictures.submit(plot_reliability, diagrams, folder / "calibration.png",
                             title=f"{final.name}: reliability on the test split")]
    if rows:
        _write_history(rows, folder / "history.csv")
    keras_model.save(folder / runs.MODEL_FILE)
    if isinstance(prep, TextPreprocessing):
        prep.save_vocabulary(folder)
    card.write(folder)
    for picture in drawn:
        picture.result()  # a picture that failed raises here, before anything is published
    progress["published"] = runs.publish(folder, final)
    return runs.drop_resume_state(progress["published"])


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


def _best_epoch(rows: list[dict], monitor: str) -> int | None:
    """The 1-based epoch with the lowest finite `monitor`, as BestWeights kept it; None if none was finite."""
    finite = [(row[monitor], int(row["epoch"])) for row in rows if math.isfinite(row.get(monitor, math.nan))]
    return min(finite)[1] + 1 if finite else None


def _history_rows(path: Path) -> list[dict]:
    """The epoch log, one row per epoch (the last, if an interrupted epoch was logged twice).

    A last row cut short is dropped: a process killed while logging an epoch had not yet saved
    that epoch's state, so --resume runs it again. Any other damage is one line."""
    if not path.is_file():
        return []
    def number(value):
        try:
            return float(value)
        except (TypeError, ValueError):  # CSVLogger writes "NA" for a metric an epoch lacks
            return None

    fix = "it is the epoch log of this unfinished run; start over with --overwrite"
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            raw = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DamagedFileError(f"{path} is damaged ({exc}); {fix}") from None
    if raw and "epoch" not in header:
        raise DamagedFileError(f"{path} is damaged (no 'epoch' column); {fix}")
    rows = [{k: number(v) for k, v in row.items() if k is not None and number(v) is not None} for row in raw]
    if rows and "epoch" not in rows[-1]:
        rows.pop()
    if any("epoch" not in row or row["epoch"] != int(row["epoch"]) for row in rows):
        raise DamagedFileError(f"{path} is damaged (a row without a whole epoch number); {fix}")
    by_epoch = {row["epoch"]: row for row in rows}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def _write_history(rows: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "epoch": int(row["epoch"])} if "epoch" in row else row)


def _versions() -> dict:
    import keras
    import tensorflow as tf

    from zoo import __version__

    return {"zoo": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}
