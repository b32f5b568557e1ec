"""`zoo train`: fit a registry model on real data and write its run folder."""

from __future__ import annotations

import click

from zoo.training.distribute import STRATEGIES

from .app import main, ranged


class Augment(click.ParamType):
    """--augment: a whole number of pixels (its range from zoo.ranges), or a preset's name."""

    name = "augment"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or str(value).strip().lstrip("-").isdigit():
            return ranged("augment").convert(value, param, ctx)
        from zoo.data.augment import PRESETS

        if value in PRESETS:
            return value
        self.fail(f"{value!r} is not a number of pixels nor a preset ({', '.join(PRESETS)})", param, ctx)


AUGMENT = Augment()

@main.command("train")
@click.argument("model", metavar="MODEL|MODEL_FILE")
@click.option("--custom-objects", multiple=True, metavar="MODULE:NAME",
              help="A model file's custom class: module:Name or file.py:Name (repeatable).")
@click.option("--vocab", type=click.Path(dir_okay=False), metavar="FILE",
              help="A text model file's vocabulary, one token a line (line n is token id n).")
@click.option("--normalize", metavar="scale|none|MEAN,STD",
              help="A model file's pixel scaling (default: none if it starts with a Rescaling layer, else scale).")
@click.option("--data", help="Dataset name (mnist, imdb) or path: class folders, a CSV file, MNIST files. "
              "Default: the model's dataset.")
@click.option("--epochs", type=ranged("epochs"), help="Passes over the training data (default: recipe).")
@click.option("--batch-size", type=ranged("batch_size"), help="Examples per step on each replica (default: recipe).")
@click.option("--lr", type=ranged("lr"),
              help="Peak learning rate (default: recipe).")
@click.option("--seed", type=ranged("seed"), default=0, show_default=True,
              help="0 to 4294967295; the same seed gives the same metrics on the same CPU.")
@click.option("--name", help="Run name (default: the model name, then <model>-2, -3...).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: $ZOO_HOME or ./saved_models).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last finished epoch.")
@click.option("--patience", type=ranged("patience"), help="Stop after N epochs without a better validation loss.")
@click.option("--until", type=ranged("until"), metavar="ACCURACY",
              help="Stop after the first epoch whose validation accuracy reaches ACCURACY (0.99), before the "
                   "recipe's last epoch.")
@click.option("--val-split", type=ranged("val_split"), default=0.1, show_default=True,
              help="Fraction of the training data held out for validation.")
@click.option("--limit", type=ranged("limit"), help="Train on the first N training examples only.")
@click.option("--augment", type=AUGMENT, metavar="PX|PRESET",
              help="Images: random shifts of up to PX pixels (0: off), or a preset for real handwriting: "
              "handwriting (rotation, shear, stroke width, blur, low resolution; zoo.data.augment). Default: recipe.")
@click.option("--crop", type=ranged("crop"),
              help="Texts: train on random windows of at least F of each text (0: off; default: recipe).")
@click.option("--label-smoothing", type=ranged("label_smoothing"),
              help="Soften the targets by F (0: off; default: recipe).")
@click.option("--text-column", help="CSV: the text column (default: detected).")
@click.option("--label-column", help="CSV: the label column (default: detected).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="auto",
              show_default=True, help="tf.distribute strategy: auto mirrors over 2+ GPUs; multiworker reads "
              "the cluster from TF_CONFIG. Batch size is per replica; the learning rate scales with replicas.")
@click.option("--mixed-precision", is_flag=True, help="Compute in float16 (GPU) or bfloat16 (CPU); "
              "weights and exports stay float32.")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="Fit a temperature on the validation split and fold it into the output layer, so that "
                   "the probabilities mean what they say (needs --val-split > 0).")
@click.option("--probe/--no-probe", default=True, show_default=True,
              help="On the first training of a model on this CPU, measure whether splitting each batch across "
                   "the cores is faster (about 2 s) and keep the answer in the user's cache; --no-probe uses "
                   "one shard per core without measuring. ZOO_CPU_SHARDS=N decides instead.")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs to RUN/logs.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run of the same name.")
def train_cmd(model, **options):
    """Train MODEL and write its run folder: model.keras, card.json, history.csv, plots.

    MODEL is a registry name, or a model file (.keras, .h5) that is
    fine-tuned from its own weights with zoo's recipe (give --data).

    \b
    Example:
      zoo train lenet                                  LeNet-5 on MNIST
      zoo train text_cnn --data ../shared/data/bbc-news
      zoo train lenet --epochs 2 --limit 5000 --name quick
      zoo train mine.keras --data mnist --epochs 3
      TF_CONFIG=... zoo train lenet --strategy multiworker   on each machine
    """
    from zoo.training.fit import train

    options["custom_objects"] = list(options.get("custom_objects") or ()) or None
    run = train(model, **{key: value for key, value in options.items() if value is not None})
    if not run.chief:
        click.echo(f"{run.card.task_in_cluster}: trained {run.card.training['epochs']} epochs of "
                   f"{run.name} in {run.card.training['seconds']:.0f} s; the chief writes the run folder")
        return
    metrics, training = run.metrics, run.card.training
    click.echo(
        f"{run.name}: test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}, "
        f"ECE {metrics['test_ece']:.2%}{_calibrated(run.card.calibration)}) "
        f"after {training['epochs']} epochs, {training['seconds']:.0f} s, "
        f"{training['samples_per_second']:,.0f} samples/s -> {run.path}/"
    )


def _calibrated(record: dict) -> str:
    if record["method"] == "temperature":
        return f", calibrated: T = {record['temperature']:.3f}, ECE was {record['test_ece']['before']:.2%}"
    return f", not calibrated: {record['reason']}"
