"""Data-driven starting rotations for the Householder layers.

A rotation followed by marginal Gaussianization lowers the negative
log-likelihood by the sum of the marginal negentropies of the rotated data
(the joint entropy is rotation-invariant). Each rotation therefore starts at
the candidate, among random orthogonal matrices, the PCA basis and the
identity, whose marginals are least Gaussian.

References:
    Laparra, Camps-Valls & Malo (2011), "Iterative Gaussianization: from ICA
    to random rotations".
    Vasicek (1976), "A test for normality based on sample entropy".
"""

from __future__ import annotations

import numpy as np

from flow._fixed_ortho import pca_rotation

# Rows used to score candidates; the m-spacing estimate's error at 4096 rows
# is about 0.01 nats, well below the differences between rotations that
# matter.
_SCORE_ROWS = 4096
NUM_CANDIDATES = 64

# Smallest spacing, as a fraction of the feature's standard deviation, so an
# atom (many equal values) scores as very non-Gaussian instead of -inf entropy.
_MIN_SPACING_FRACTION = 1e-6


def marginal_negentropy(y: np.ndarray) -> np.ndarray:
    """Estimate the negentropy of every column of y, `(batch, features)`.

    Uses Vasicek's m-spacing entropy estimate with m = sqrt(batch):
    ``J = 0.5 log(2 pi e var) - H``, which is >= 0 up to estimation error and
    0 for a Gaussian.
    """
    n = y.shape[0]
    m = max(1, int(np.sqrt(n)))
    ordered = np.sort(y, axis=0)
    std = ordered.std(axis=0)
    upper = ordered[np.minimum(np.arange(n) + m, n - 1)]
    lower = ordered[np.maximum(np.arange(n) - m, 0)]
    spacing = np.maximum(upper - lower, _MIN_SPACING_FRACTION * np.maximum(std, 1e-300))
    entropy = np.mean(np.log(n / (2.0 * m) * spacing), axis=0)
    gaussian_entropy = 0.5 * np.log(2.0 * np.pi * np.e * np.maximum(std**2, 1e-300))
    return gaussian_entropy - entropy


def random_orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a Haar-distributed orthogonal `(dim, dim)` matrix."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))


def best_rotation(
    x: np.ndarray, seed: int, num_candidates: int = NUM_CANDIDATES
) -> np.ndarray:
    """Return the candidate rotation Q maximising the marginal negentropy of x Q."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] > _SCORE_ROWS:
        x = x[rng.choice(x.shape[0], _SCORE_ROWS, replace=False)]
    dim = x.shape[1]
    candidates = [np.eye(dim)]
    if x.shape[0] > dim:
        candidates.append(pca_rotation(x))
    candidates += [random_orthogonal(dim, rng) for _ in range(num_candidates)]
    scores = [marginal_negentropy(x @ q).sum() for q in candidates]
    return candidates[int(np.argmax(scores))]


def householder_vectors(q: np.ndarray) -> np.ndarray:
    """Return d reflection vectors whose product equals q up to column signs.

    Householder QR of q gives q = H_1 ... H_d R with R diagonal of +-1;
    flipping q's columns by R (which leaves every marginal's entropy
    unchanged) makes the product of the reflections exact.

    Args:
        q: orthogonal `(d, d)` matrix.

    Returns:
        `(d, d)` array, one reflection vector per row.
    """
    dim = q.shape[0]
    a = np.array(q, dtype=np.float64)
    vectors = np.zeros((dim, dim))
    for k in range(dim):
        column = a[k:, k]
        sign = 1.0 if column[0] >= 0 else -1.0
        v = column.copy()
        v[0] += sign * np.linalg.norm(column)
        vectors[k, k:] = v
        a[k:] -= 2.0 * np.outer(v, v @ a[k:]) / (v @ v)
    return vectors
