"""Checkpoints that a kill -9 cannot corrupt.

Keras's `BackupAndRestore` and `ModelCheckpoint` write their weights file in place, and the
backup's epoch number in a second file: a process killed while saving leaves a truncated
HDF5 file (or new weights beside the old epoch number), and --resume then fails or repeats an
epoch. These two write every file under a temporary name and rename it into place, and the
backup's metadata names the weights file it belongs to, so the last complete state always
survives.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from zoo.backend import keras
from zoo.errors import ZooError

_k = keras()

_METADATA = "training_metadata.json"


def _replace(write, path: Path) -> None:
    """Write a file through `write(temporary_path)`, then rename it over `path`."""
    temporary = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp.weights.h5") \
        if path.name.endswith(".weights.h5") else path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class AtomicBackupAndRestore(_k.callbacks.Callback):
    """`BackupAndRestore` for whole epochs, written atomically: resume after any interruption.

    The folder holds `epoch-<N>.weights.h5` (model and optimizer after N epochs) for the last
    two epochs, and `training_metadata.json` naming the newest; a new epoch's weights are
    complete on disk before the metadata points at them.

    `agree(epoch) -> epoch`, when given, settles the epoch to restart from with the other
    processes of a cluster: each saves its own backup at the end of an epoch, so one may be an
    epoch ahead of another when the cluster is interrupted, and all restart from the oldest.
    """

    KEEP = 2

    def __init__(self, backup_dir, agree=None):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.agree = agree

    def _weights(self, epoch: int) -> Path:
        return self.backup_dir / f"epoch-{epoch}.weights.h5"

    def on_train_begin(self, logs=None):
        metadata = self.backup_dir / _METADATA
        epoch = 0
        if metadata.is_file():
            from zoo.runs import read_json

            epoch = read_json(metadata, "it names the last saved epoch; start over with --overwrite",
                              required=("epoch",))["epoch"]
        if self.agree is not None:
            epoch = self.agree(epoch)
        if epoch == 0:
            return
        if not self._weights(epoch).is_file():
            raise ZooError(f"cannot resume from epoch {epoch}: {self._weights(epoch)} is missing")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(self._weights(epoch))
        except ValueError:  # another model's, or saved before zoo trained through zoo.training.sharding.Sharded
            raise ZooError(f"cannot resume from epoch {epoch}: {self._weights(epoch)} does not fit this "
                           f"model (saved by another zoo version?); start over with --overwrite") from None
        self.model._initial_epoch = epoch  # how Keras's own BackupAndRestore resumes fit

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        done = epoch + 1
        _replace(lambda p: self.model.save_weights(p, overwrite=True), self._weights(done))
        _replace(lambda p: p.write_text(json.dumps({"epoch": done, "weights": self._weights(done).name})),
                 self.backup_dir / _METADATA)
        for old in self.backup_dir.glob("epoch-*.weights.h5"):
            number = old.name[len("epoch-"): -len(".weights.h5")]
            if not number.isdigit() or not done - self.KEEP < int(number) <= done:
                old.unlink(missing_ok=True)


class BestWeights(_k.callbacks.Callback):
    """Keep the weights of the epoch with the lowest `monitor` (a loss), written atomically.

    `best` is the lowest value seen before this session (from the run's history on --resume),
    so a resumed run does not replace a better earlier epoch.
    """

    def __init__(self, path, monitor: str = "val_loss", best: float = math.inf):
        super().__init__()
        self.path, self.monitor, self.best = Path(path), monitor, best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value < self.best:
            return
        self.best = float(value)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _replace(lambda p: self.model.save_weights(p, overwrite=True), self.path)


class Until(_k.callbacks.Callback):
    """Stop after the first epoch whose `monitor` (validation accuracy, or training accuracy without
    a validation split) reaches `target`: `zoo train --until 0.99`, for a run that needs an accuracy
    and not the recipe's last epoch. The schedule is the recipe's, so the learning rate has not
    decayed all the way when it stops: the recipe's full length usually ends a little higher."""

    def __init__(self, target: float, monitor: str):
        super().__init__()
        self.target, self.monitor = target, monitor

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value >= self.target:
            self.model.stop_training = True
