"""Progress reporting: a live tqdm bar, or plain log lines for logs and `dvc repro` output.

`--no-progress` turns the bar off but keeps the user informed: one line per tenth of the work,
which reads well in CI logs where a redrawn bar becomes thousands of carriage returns.
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("dcign")


def configure_logging(level: int) -> None:
    """The CLI's log format on stderr; set again in each process a stage spawns (train/lanes.py),
    which starts without its parent's handlers."""
    logging.basicConfig(level=level, format="dcign: %(message)s", stream=sys.stderr, force=True)
    # Third-party chatter ("No OpenGL_accelerate module", dvclive's git hints) is not ours.
    for name in ("OpenGL", "dvclive", "matplotlib", "h5py", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)


class LineProgress:
    """tqdm's update/set_postfix/close subset, logging a line each time another `every` of the
    total is done (and at the end)."""

    def __init__(self, total: int, desc: str, unit: str, initial: int = 0,
                 every: float = 0.1) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self._start_n, self._t0 = initial, time.perf_counter()
        self._step = max(1, round(total * every))
        self._next = (initial // self._step + 1) * self._step
        self._postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self._next or self.n == self.total:
            self._next = (self.n // self._step + 1) * self._step
            self._log()

    def set_postfix(self, refresh: bool = False, **kwargs: object) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def _log(self) -> None:
        rate = (self.n - self._start_n) / max(time.perf_counter() - self._t0, 1e-9)
        pct = 100.0 * self.n / self.total if self.total else 100.0
        extra = f", {self._postfix}" if self._postfix else ""
        log.info("%s: %d/%d %s (%.0f%%), %.1f %s/s%s", self.desc, self.n, self.total, self.unit,
                 pct, rate, self.unit, extra)

    def close(self) -> None:
        pass

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int, desc: str, unit: str, *, live: bool, initial: int = 0,
                 enabled: bool = True):
    """A tqdm bar when `live`, else a LineProgress; a silent bar when not `enabled` (e.g. on the
    non-zero ranks of a distributed run)."""
    from tqdm import tqdm

    if live or not enabled:
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled,
                    smoothing=0.1, dynamic_ncols=True)
    return LineProgress(total, desc, unit, initial=initial)
