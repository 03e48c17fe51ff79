"""Exception raised for bad training data or options."""

from __future__ import annotations

__all__ = ["TrainingInputError"]


class TrainingInputError(ValueError):
    """Invalid data or option given to the training job.

    The message names the offending value and how to fix it. The ``gaussprobe
    train`` command prints it and exits with status 2 without publishing.
    """
