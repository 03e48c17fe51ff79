"""Maximum-likelihood training with early stopping, then freezing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from flow._freeze import freeze_flow
from flow._model import GaussianizationFlow
from flow._precondition import LocationPreconditioner
from flow._validation import SUPPORTED_DTYPES, check_array

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, dict[str, float]], None]

# Fewer rows than this cannot give both a training batch and a validation
# estimate worth stopping on.
MIN_TRAINING_ROWS = 10

# Learning-rate schedule: after a third of `patience` epochs without a new best
# validation NLL the rate is halved, down to 1/64 of its start. Mini-batch
# noise otherwise keeps Adam bouncing around the optimum and early stopping
# fires long before the likelihood has converged.
_PLATEAU_FACTOR = 0.5
_MIN_LR_FRACTION = 1.0 / 64.0

# Default decay of the exponential moving average of the weights (Polyak
# averaging) that is validated, kept and frozen: per Adam step, a horizon of
# about 100 steps. Averaging cancels most of the mini-batch noise in the last
# iterates.
DEFAULT_EMA_DECAY = 0.99

# Rows per evaluation chunk when scoring the validation set, so memory stays
# bounded for large data sets.
_EVAL_CHUNK = 8192


def fit_and_freeze(
    data: Any,
    num_blocks: int = 6,
    num_components: int = 10,
    epochs: int = 120,
    batch_size: int = 256,
    lr: float = 2e-3,
    validation_split: float = 0.1,
    patience: int = 15,
    seed: int | None = None,
    verbose: int = 0,
    *,
    standardize: bool = False,
    dtype: str = "float32",
    num_reflectors: int | None = None,
    use_pca: bool = True,
    min_scale: float = 0.0,
    marginal_first: bool = False,
    input_noise: float = 0.0,
    ema_decay: float = DEFAULT_EMA_DECAY,
    progress: ProgressCallback | None = None,
) -> tuple[GaussianizationFlow, dict[str, Any]]:
    """Fit a Gaussianization flow by maximum likelihood and freeze it.

    Adam minimises the mean negative log-likelihood on shuffled mini-batches.
    After each epoch the validation NLL decides early stopping, and the
    weights of the best epoch are restored before freezing. For a fixed
    integer ``seed`` the result is bit-for-bit reproducible on one machine.

    Args:
        data: `(batch, features)` finite training data.
        num_blocks, num_components, num_reflectors, use_pca, min_scale,
            marginal_first, standardize, dtype: flow architecture (see
            ``GaussianizationFlow``).
        epochs: maximum passes over the training rows.
        batch_size: rows per Adam step (capped at the training rows).
        lr: Adam learning rate.
        validation_split: fraction of rows held out for early stopping, in
            [0, 1). With 0 the training NLL decides instead.
        patience: epochs without validation improvement before stopping.
        seed: seed of the split, shuffling and initialisation; None draws one.
        verbose: 1 logs one INFO line per epoch.
        input_noise: standard deviation, in data units, of Gaussian noise
            added to every training batch (fresh noise per step, none on the
            validation rows). Fitting the data smoothed this way regularises
            small data sets; the noise variance adds to the fitted density's.
        ema_decay: per-step decay of the moving average of the weights that
            is validated and kept, in [0, 1); 0 keeps the last iterate. A
            horizon of 1 / (1 - ema_decay) steps longer than an epoch
            averages over several epochs, which generalises better on small
            data sets.
        progress: called after every epoch with ``(epoch, logs)``, logs
            holding ``loss``, ``val_loss`` and ``seconds`` (elapsed).

    Returns:
        The frozen flow and a history dict with per-epoch ``loss`` and
        ``val_loss`` (mean NLL in nats), ``best_epoch``, ``epochs_run``,
        ``train_seconds`` and ``seed``.
    """
    _check_arguments(epochs, batch_size, lr, validation_split, patience, dtype)
    if not 0 <= ema_decay < 1:
        raise ValueError(f"ema_decay must be in [0, 1); received {ema_decay}")
    if not (np.isfinite(input_noise) and input_noise >= 0):
        raise ValueError(f"input_noise must be finite and >= 0; received {input_noise}")
    x = np.asarray(check_array(data, None, dtype, "data"))
    if x.shape[0] < MIN_TRAINING_ROWS:
        raise ValueError(
            f"data has {x.shape[0]} rows; fit_and_freeze needs at least "
            f"{MIN_TRAINING_ROWS}"
        )
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31 - 1))
    rng = np.random.default_rng(seed)
    x_train, x_val = _split(x, validation_split, rng)

    flow = GaussianizationFlow(
        x.shape[1],
        num_blocks=num_blocks,
        num_components=num_components,
        num_reflectors=num_reflectors,
        use_pca=use_pca,
        min_scale=min_scale,
        marginal_first=marginal_first,
        standardize=standardize,
        dtype=dtype,
    )
    flow.initialize_from_data(x_train, seed=seed)
    history = _train(
        flow,
        x_train,
        x_val,
        epochs,
        min(batch_size, len(x_train)),
        lr,
        patience,
        rng,
        verbose,
        progress,
        _BatchNoise(input_noise, seed),
        ema_decay,
    )
    history["seed"] = seed
    freeze_flow(flow)
    return flow, history


class _BatchNoise:
    """Gaussian noise for training batches, reproducible from the seed."""

    def __init__(self, scale: float, seed: int) -> None:
        self.scale = float(scale)
        self._key = jax.random.PRNGKey(seed)

    def apply(self, batch: jax.Array, step: jax.Array) -> jax.Array:
        """Return batch plus noise drawn for this step, or batch unchanged."""
        if self.scale == 0:
            return batch
        key = jax.random.fold_in(self._key, step)
        return batch + self.scale * jax.random.normal(key, batch.shape, batch.dtype)


def _check_arguments(
    epochs: int,
    batch_size: int,
    lr: float,
    validation_split: float,
    patience: int,
    dtype: str,
) -> None:
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; received {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; received {batch_size}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0; received {lr}")
    if not 0 <= validation_split < 1:
        raise ValueError(
            f"validation_split must be in [0, 1); received {validation_split}"
        )
    if patience < 0:
        raise ValueError(f"patience must be >= 0; received {patience}")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {SUPPORTED_DTYPES}; received {dtype!r}")


def _split(
    x: np.ndarray, validation_split: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(x))
    num_val = round(validation_split * len(x))
    if validation_split > 0 and num_val == 0:
        num_val = 1
    return x[order[num_val:]], x[order[:num_val]]


def _train(
    flow: GaussianizationFlow,
    x_train: np.ndarray,
    x_val: np.ndarray,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    rng: np.random.Generator,
    verbose: int,
    progress: ProgressCallback | None,
    noise: _BatchNoise,
    ema_decay: float,
) -> dict[str, Any]:
    trainable = flow.trainable_variables
    trainable_paths = [variable.path for variable in trainable]
    fixed = {
        w.path: w.value for w in flow.weights if w.path not in set(trainable_paths)
    }
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    optimizer.build(trainable)

    # The optimizer works on preconditioned variables; see flow._precondition.
    preconditioner = LocationPreconditioner(flow, trainable)

    def log_prob(values: list[jax.Array], batch: jax.Array) -> jax.Array:
        weights = preconditioner.to_model(values)
        params = {**fixed, **dict(zip(trainable_paths, weights, strict=True))}
        return flow.log_prob_pure(params, batch)

    def loss_fn(values: list[jax.Array], batch: jax.Array) -> jax.Array:
        return -jnp.mean(log_prob(values, batch))

    @jax.jit
    def train_step(
        values: list[jax.Array],
        opt_values: list[jax.Array],
        averages: list[jax.Array],
        batch: jax.Array,
        step: jax.Array,
    ) -> tuple[Any, Any, Any, jax.Array]:
        batch = noise.apply(batch, step)
        loss, grads = jax.value_and_grad(loss_fn)(values, batch)
        values, opt_values = optimizer.stateless_apply(opt_values, grads, values)
        averages = [
            ema_decay * a + (1.0 - ema_decay) * v
            for a, v in zip(averages, values, strict=True)
        ]
        return values, opt_values, averages, loss

    @jax.jit
    def nll_sum(values: list[jax.Array], batch: jax.Array) -> jax.Array:
        return -jnp.sum(log_prob(values, batch))

    def mean_nll(values: list[jax.Array], x: np.ndarray) -> float:
        total = 0.0
        for start in range(0, len(x), _EVAL_CHUNK):
            total += float(nll_sum(values, x[start : start + _EVAL_CHUNK]))
        return total / len(x)

    values = preconditioner.initial_values([variable.value for variable in trainable])
    opt_values = [variable.value for variable in optimizer.variables]
    lr_index = next(
        i for i, v in enumerate(optimizer.variables) if v.path.endswith("learning_rate")
    )
    current_lr, plateau = lr, max(2, patience // 3)
    history: dict[str, Any] = {"loss": [], "val_loss": []}
    averages = list(values)
    best_score, best_values, best_epoch, waited = np.inf, values, 0, 0
    started = time.perf_counter()
    steps_per_epoch = len(x_train) // batch_size
    total_steps = 0

    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        for step in range(steps_per_epoch):
            batch = x_train[order[step * batch_size : (step + 1) * batch_size]]
            values, opt_values, averages, loss = train_step(
                values, opt_values, averages, batch, total_steps
            )
            total_steps += 1
            losses.append(loss)
        train_loss = float(np.mean(np.asarray(jnp.stack(losses))))
        val_loss = mean_nll(averages, x_val) if len(x_val) else train_loss
        elapsed = time.perf_counter() - started
        history["loss"].append(train_loss)
        history["val_loss"].append(val_loss)

        logs = {
            "loss": train_loss,
            "val_loss": val_loss,
            "seconds": elapsed,
            "lr": current_lr,
        }
        if verbose:
            logger.info(
                "epoch %d/%d loss %.4f val_loss %.4f %.1fs",
                epoch,
                epochs,
                train_loss,
                val_loss,
                elapsed,
            )
        if progress is not None:
            progress(epoch, logs)

        if not np.isfinite(val_loss):
            raise FloatingPointError(
                f"validation NLL became {val_loss} at epoch {epoch}; "
                f"lower the learning rate (lr={lr})"
            )
        if val_loss < best_score:
            best_score, best_values, best_epoch, waited = val_loss, averages, epoch, 0
            continue
        waited += 1
        if waited > patience:
            break
        if waited % plateau == 0 and current_lr > lr * _MIN_LR_FRACTION:
            current_lr *= _PLATEAU_FACTOR
            opt_values[lr_index] = jnp.asarray(current_lr, opt_values[lr_index].dtype)

    best_weights = preconditioner.to_model(best_values)
    for variable, value in zip(trainable, best_weights, strict=True):
        variable.assign(value)
    history.update(
        best_epoch=best_epoch,
        epochs_run=len(history["loss"]),
        train_seconds=time.perf_counter() - started,
    )
    return history
