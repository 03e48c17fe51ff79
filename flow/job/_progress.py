"""Per-epoch progress output: a tqdm bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = ["EpochProgress"]

logger = logging.getLogger(__name__)


class EpochProgress:
    """Callable for the ``progress`` argument of ``fit_and_freeze``.

    Each call reports one finished epoch with its train and validation NLL and
    the elapsed time since the object was created. On a terminal this updates a
    tqdm bar; otherwise it logs one INFO line per epoch.

    Args:
        total_epochs: Maximum number of epochs (early stopping may end sooner).
        stream: Where the bar is drawn; standard error by default.
        use_bar: Force the bar on or off; by default on when ``stream`` is a TTY.
    """

    def __init__(
        self,
        total_epochs: int,
        stream: TextIO | None = None,
        use_bar: bool | None = None,
    ) -> None:
        self.total_epochs = total_epochs
        self.stream = stream if stream is not None else sys.stderr
        self.use_bar = self.stream.isatty() if use_bar is None else use_bar
        self.started = time.monotonic()
        self.epochs_seen = 0
        self._bar: Any = None
        if self.use_bar:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_epochs, unit="epoch", file=self.stream, dynamic_ncols=True
            )

    def __call__(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Report a finished epoch; ``epoch`` counts from 1."""
        self.epochs_seen += 1
        elapsed = time.monotonic() - self.started
        train_nll = _as_float(logs.get("loss"))
        validation_nll = _as_float(logs.get("val_loss"))
        if self._bar is not None:
            self._bar.set_postfix(
                train_nll=f"{train_nll:.4f}",
                val_nll=f"{validation_nll:.4f}",
                refresh=False,
            )
            self._bar.update(1)
            return
        logger.info(
            "epoch %d/%d: train NLL %.4f, validation NLL %.4f, elapsed %.1f s",
            epoch,
            self.total_epochs,
            train_nll,
            validation_nll,
            elapsed,
        )

    def close(self) -> None:
        """Close the bar (a no-op in log mode)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
