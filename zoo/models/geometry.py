"""Convolution arithmetic: output sizes, padding and receptive fields.

Pure Python, one spatial axis at a time (Dumoulin & Visin 2016, "A guide to
convolution arithmetic for deep learning"; Araujo et al. 2019, "Computing
receptive fields of convolutional neural networks").

    out  = floor((in + pad_left + pad_right - d * (k - 1) - 1) / s) + 1
    rf   = rf_prev + (k - 1) * d * jump_prev
    jump = jump_prev * s

`start` is the centre, in input coordinates, of the receptive field of the
first output position; it lets branches be merged exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

PADDINGS = ("valid", "same", "causal")


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: d * (k - 1) + 1."""
    return dilation * (kernel - 1) + 1


def padding_amount(
    size: int, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> tuple[int, int]:
    """Zeros added (left, right) by Keras/TensorFlow for this padding mode."""
    span = effective_kernel(kernel, dilation)
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    if padding == "same":
        out = -(-size // stride)  # ceil(size / stride)
        total = max((out - 1) * stride + span - size, 0)
        return total // 2, total - total // 2
    raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")


def output_size(
    size: int, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> int:
    """Output length of a convolution or pooling along one axis (may be <= 0: it does not fit)."""
    left, right = padding_amount(size, kernel, stride, padding, dilation)
    return (size + left + right - effective_kernel(kernel, dilation)) // stride + 1


@dataclass(frozen=True)
class Field:
    """Receptive field of one output position along one axis."""

    rf: float = 1  # size, in input positions
    jump: float = 1  # distance between neighbouring output positions, in input positions
    start: float = 0.0  # centre of the first output position's field, in input coordinates

    def conv(self, kernel: int, stride: int, pad_left: int, dilation: int = 1) -> "Field":
        span = effective_kernel(kernel, dilation)
        return Field(
            rf=self.rf + (span - 1) * self.jump,
            jump=self.jump * stride,
            start=self.start + ((span - 1) / 2 - pad_left) * self.jump,
        )

    def shift(self, positions: int) -> "Field":
        """Cropping (positive) or zero padding (negative) of `positions` on the left."""
        return Field(self.rf, self.jump, self.start + positions * self.jump)

    def covering(self, positions: int) -> "Field":
        """The field of a unit that sees all `positions` outputs along this axis."""
        return self.conv(positions, positions, 0)

    @staticmethod
    def union(fields: "list[Field]") -> "Field | None":
        """Extent seen by a unit that merges the same position of several branches.

        None when the branches step through the input at different rates.
        """
        if len({f.jump for f in fields}) != 1:
            return None
        lo = min(f.start - (f.rf - 1) / 2 for f in fields)
        hi = max(f.start + (f.rf - 1) / 2 for f in fields)
        return Field(rf=hi - lo + 1, jump=fields[0].jump, start=(lo + hi) / 2)


@dataclass(frozen=True)
class Window:
    """The sliding window of a convolution or pooling layer, one entry per spatial axis."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str
    dilation: tuple[int, ...]

    def output(self, sizes) -> tuple[int, ...]:
        return tuple(
            output_size(n, k, s, self.padding, d)
            for n, k, s, d in zip(sizes, self.kernel, self.strides, self.dilation)
        )


def window_of(layer) -> Window | None:
    """The window of a Keras conv or pooling layer (duck-typed), or None for any other layer."""
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    padding = getattr(layer, "padding", None)
    if kernel is None or not isinstance(padding, str):
        return None
    kernel = tuple(kernel)
    strides = tuple(getattr(layer, "strides", None) or kernel)
    dilation = tuple(getattr(layer, "dilation_rate", None) or (1,) * len(kernel))
    return Window(kernel, strides, padding.lower(), dilation)
