"""Ctrl-C during `fit`, turned into KeyboardInterrupt between two steps, where nothing swallows it.

Python raises KeyboardInterrupt wherever the main thread happens to be; during `fit` that is
often inside TensorFlow's input pipeline, which reports it as the end of the epoch's data, and
Keras then goes on with the next epoch. Measured on an Intel Xeon (AMX), 2 cores: of 3 SIGINTs
sent to `zoo train lenet --limit 1500` after its second epoch, 2 were lost that way and the run
finished all 15 epochs. Here the signal only sets a flag, and a callback raises at the end of the
step that is running; a second Ctrl-C raises at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from zoo.backend import keras

_k = keras()


class StopOnInterrupt(_k.callbacks.Callback):
    """Raise KeyboardInterrupt after the batch during which Ctrl-C came."""

    def __init__(self, flag: threading.Event):
        super().__init__()
        self.flag = flag

    def _check(self, *_, logs=None):
        if self.flag.is_set():
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check


@contextlib.contextmanager
def between_steps():
    """A `StopOnInterrupt` callback for `fit`, with SIGINT setting its flag while the block runs;
    outside the main thread, or where SIGINT is not Python's own (ignored, or a caller's handler),
    nothing is changed and the callback never fires."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield StopOnInterrupt(flag)
        return

    def handler(signum, frame):
        if flag.is_set():  # the second Ctrl-C: at once
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield StopOnInterrupt(flag)
    finally:
        signal.signal(signal.SIGINT, previous)
    if flag.is_set():  # it came after the last step
        raise KeyboardInterrupt
