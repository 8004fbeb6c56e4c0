"""Row strips: run convolution stacks on horizontal bands with a halo, to bound memory.

No bpy. A stack of convolutions whose receptive field reaches ``halo`` rows gives exactly the same
rows whether it runs on the whole map or on a band extended by ``halo`` rows on each side (rows near
a cut see zero padding, and those are the ones cropped away). The finest, full-width levels of the
network are run this way, so their largest tensors never exist at full size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Strip:
    top: int  # first output row
    bottom: int  # one past the last output row
    start: int  # first input row (top - halo, clipped)
    stop: int  # one past the last input row (bottom + halo, clipped)

    def crop(self, scale: int = 1) -> slice:
        """Where the output rows sit inside the result of the input window (scaled for upsampled maps)."""
        return slice((self.top - self.start) * scale, (self.bottom - self.start) * scale)

    def rows(self, scale: int = 1) -> slice:
        """The output rows in the full map (scaled for upsampled maps)."""
        return slice(self.top * scale, self.bottom * scale)

    def window(self, divisor: int = 1, scale: int = 1) -> slice:
        """The input window on a map ``divisor`` times coarser or ``scale`` times finer."""
        assert self.start % divisor == 0 and self.stop % divisor == 0, (self, divisor)
        return slice(self.start * scale // divisor, self.stop * scale // divisor)


def strips(height: int, rows: int, halo: int, align: int = 8) -> Iterator[Strip]:
    """Bands of ``rows`` output rows (rounded to ``align``) covering ``height``, each with its halo."""
    rows = max(align, rows // align * align)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        yield Strip(top, bottom, max(0, top - halo), min(height, bottom + halo))


def strip_rows(row_bytes: float, budget_bytes: float, height: int, halo: int) -> int:
    """Output rows per strip so that a window of them (plus halos) fits the byte budget."""
    return max(8, min(height, int(budget_bytes // row_bytes) - 2 * halo))
