"""What the benchmarks over the shipped weights share: the tags, and one command line
(--home, --models, --repeats) that prints the machine first."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _machine import describe

PRETRAINED = {"lenet5": "lenet5.mnist", "mnist_cnn": "mnist_cnn.mnist",
              "mnist_cnn_dropout": "mnist_cnn_dropout.mnist", "text_cnn": "text_cnn.bbc_news"}


def arguments(doc: str, prefix: str, argv=None) -> tuple[argparse.Namespace, Path]:
    """The parsed command line and the folder the runs go to (a new temporary one by default)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--models", nargs="+", default=list(PRETRAINED), choices=list(PRETRAINED))
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    print(describe())
    return args, args.home or Path(tempfile.mkdtemp(prefix=prefix))
