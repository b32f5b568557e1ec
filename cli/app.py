"""The `zoo` group and what every command shares: one-line errors, tables, JSON output.

Nothing heavy is imported here, so `zoo --help` answers at once; TensorFlow
loads inside a command, through the library, when it needs a model.
"""

from __future__ import annotations

import contextlib
import json
import sys

import click

from zoo._version import __version__
from zoo.errors import ZooError
from zoo.inspect.summary import shape_text as shape  # noqa: F401 - the commands' name for it


class OneLineUsageError(click.ClickException):
    """A usage mistake found by zoo itself: `Error: ...` on one line, exit code 2."""

    exit_code = 2


def _one_line(exc: click.UsageError) -> click.ClickException:
    """Click's usage errors print the usage and a blank line first; keep the message and the hint."""
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        return exc  # `zoo` alone: the help text is the answer
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return OneLineUsageError(exc.format_message() + hint)


class ZooGroup(click.Group):
    """Every error is one `Error: ...` line on stderr: exit code 2 for usage, 1 at run time, 130 for Ctrl-C."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            error = OneLineUsageError if exc.usage else click.ClickException
            error = error(str(exc))
            error.exit_code = getattr(exc, "exit_code", error.exit_code)
            raise error from None
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except KeyboardInterrupt:
            error = click.ClickException("interrupted")
            error.exit_code = 130
            raise error from None


_STDOUT = "zoo.stdout"  # ctx.meta: the real stdout while --json sends everything else to stderr


def json_option(help: str = "Print one JSON document instead of a table."):
    """`--json`: one JSON document on stdout and nothing else there. While the command runs, what
    the libraries print (Keras's "Downloading data from ...") goes to stderr; `echo_json` writes
    to the real stdout."""

    def callback(ctx: click.Context, param, value: bool) -> bool:
        if value:
            ctx.meta[_STDOUT] = sys.stdout
            ctx.with_resource(contextlib.redirect_stdout(sys.stderr))
        return value

    return click.option("--json", "as_json", is_flag=True, callback=callback, help=help)


def echo_json(document) -> None:
    context = click.get_current_context(silent=True)
    click.echo(json.dumps(document, indent=2), file=context.meta.get(_STDOUT) if context else None)


STATED = ("data", "labels", "normalize", "vocab", "custom_objects")


def model_file_options(data_help: str | None = "A model file's data: a dataset (mnist, class folders, CSV), an .npz "
                                                "with x and y, or a folder of unlabeled images (calibration and "
                                                "agreement only). Recorded in its card.",
                       *, only_custom: bool = False):
    """What a user states of a model file (.keras, .h5, SavedModel): the command gets them as one
    `stated` dict (the API's keyword arguments), with `out`, the folder its run goes to."""
    import functools

    options = [
        click.option("--labels", metavar="FILE|a,b,c", help="Class names: a file with one a line, or a,b,c "
                     "(default: the data's, else class indices)."),
        click.option("--normalize", metavar="scale|none|MEAN,STD",
                     help="Pixel scaling: scale (pixel / 255), none (0-255 as they are), or MEAN,STD on 0-255 "
                          "pixels. Default: none if the model starts with a Rescaling layer, else scale (said as "
                          "assumed)."),
        click.option("--vocab", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Text models: the vocabulary, one token a line (line n is token id n)."),
    ]
    if data_help is not None:
        options.insert(0, click.option("--data", metavar="SPEC", help=data_help))
    if only_custom:
        options = []
    options.append(click.option("--custom-objects", multiple=True, metavar="MODULE:NAME",
                                help="A custom class the model file uses: module:Name or file.py:Name (repeatable)."))
    options.append(click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
                                help="Where runs live, a model file's included (default: $ZOO_HOME or saved_models/)."))

    def wrap(command):
        @functools.wraps(command)
        def inner(*args, **kwargs):
            stated = {key: kwargs.pop(key) for key in STATED if key in kwargs}
            stated = {k: v for k, v in stated.items() if v not in (None, ())}
            if "custom_objects" in stated:
                stated["custom_objects"] = list(stated["custom_objects"])
            return command(*args, stated=stated, **kwargs)

        for option in reversed(options):
            inner = option(inner)
        return inner

    return wrap


def percent(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def console():
    from rich.console import Console

    # A pipe or file gets the whole table rather than one cut to 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 240)


def table(title: str, columns):
    """A compact rich table; columns are (header, justify) pairs."""
    from rich import box
    from rich.table import Table

    made = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for header, justify in columns:
        made.add_column(header, justify=justify, no_wrap=justify == "right")
    return made


def ranged(name: str) -> click.ParamType:
    """The Click type of an option whose range zoo.ranges owns: the command line refuses what the
    API would."""
    from zoo.ranges import RANGES

    r = RANGES[name]
    kind = click.IntRange if r.kind is int else click.FloatRange
    return kind(min=r.low, max=r.high, min_open=r.low_open, max_open=r.high_open)


def count(n) -> str:
    return "-" if n is None else f"{n:,}"


def axes(values) -> str:
    """Per-axis values, one number when they agree: [2, 2] -> '2'."""
    if values is None:
        return "-"
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="zoo")
@click.option("--unsafe", is_flag=True, help="Load .keras files that carry Python code (Lambda layers). "
              "Only for files you trust.")
def main(unsafe: bool):
    """Classic small networks in Keras 3: list, summarize, train and export them.

    \b
    Example:
      zoo list                      the models, with parameters and MACs
      zoo summary lenet             LeNet-5 layer by layer: shapes, MACs, receptive fields
      zoo train lenet               train LeNet-5 on MNIST into saved_models/lenet5/
      zoo evaluate lenet5 --json    its test metrics as one JSON document

    Set ZOO_DATA_DIR to the folder that holds the datasets, ZOO_HOME to where
    runs are written (default ./saved_models), ZOO_VERBOSE=1 to see TensorFlow's logs.
    """
    if unsafe:
        import os

        os.environ["ZOO_UNSAFE"] = "1"
    import shlex

    from zoo import locks

    locks.set_command(shlex.join(["zoo", *sys.argv[1:]]))  # what another process's refusal names
    _warnings_as_lines()


def _warnings_as_lines() -> None:
    """The library's ZooWarnings (a skipped file, a wait for a lock, a repaired run) as one
    `Warning: ...` line each on stderr; other warnings as Python prints them."""
    import warnings

    from zoo.errors import ZooWarning

    shown = warnings.showwarning
    if getattr(shown, "zoo", False):  # installed already (the tests invoke main many times)
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ZooWarning):
            click.echo(f"Warning: {message}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show.zoo = True
    warnings.showwarning = show
    warnings.simplefilter("always", ZooWarning)
