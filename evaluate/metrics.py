"""Pure metric cores on row-major arrays: MIG, DCI, equivariance, invariance, calibration,
identity retrieval and image detail.

Every function takes plain arrays (``codes`` is ``(N, D)``, ``factors`` is ``(N, K)``, one row
per image) and returns plain Python numbers, lists and dicts, ready for ``json.dump`` and
``dvc metrics diff``. Nothing here reads files, samples data or touches global RNG state; the
evaluate stage gathers encoder means and true factors and calls these.

MIG and DCI follow disentanglement_lib (Locatello et al. 2019) with two documented extensions:

* **Continuous factors.** disentanglement_lib's factors are discrete (class indices). Ours are
  angles in degrees. A factor with at most ``n_bins`` distinct values is used as categorical
  labels unchanged (so integer-valued grid factors behave exactly as in disentanglement_lib);
  one with more is discretised into ``n_bins`` equal-width bins over its range, the same
  histogram discretiser the library applies to codes. Pass ``discrete_factors`` to override the
  automatic choice (e.g. an identity id with hundreds of values must stay categorical).
* **Constant factors** have zero entropy, so MIG's normalisation is 0/0 and a classifier has a
  single class. They are excluded: their MIG entry is ``None``, their DCI importance column is
  zero, and they do not enter any mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy.ndimage import binary_erosion, gaussian_filter
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score

__all__ = [
    "DCI_GBT_DEFAULTS",
    "AngleReadout",
    "angle_difference",
    "circular_equivariance",
    "dci",
    "detail",
    "equivariance",
    "factor_to_latent",
    "fit_angle_readout",
    "high_pass",
    "interior",
    "invariance_ratio",
    "largest_variance_latent",
    "latent_to_factor",
    "linear_calibration",
    "median_angle_error",
    "mig",
    "top1_retrieval",
]

# disentanglement_lib's probe (`compute_importance_gbt`: sklearn's GradientBoostingClassifier
# defaults, 100 stages of depth 3), so that scores compare with the literature. Fewer, shallower
# stages give much higher D and C on noisy codes (5 x 2: D = 0.90 where 100 x 3 gives 0.33 on a
# noisy monotone code; 0.03 instead of 0.002 on a random one), so they are not comparable.
DCI_GBT_DEFAULTS: dict[str, Any] = {"n_estimators": 100, "max_depth": 3}


# --------------------------------------------------------------------------- helpers


def _as_matrix(name: str, a: Any) -> np.ndarray:
    """``a`` as a finite float64 ``(N, D)`` array with N >= 1, or ValueError naming ``name``."""
    m = np.asarray(a, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (N, D); got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} contains NaN or inf")
    return m


def _as_vector(name: str, a: Any) -> np.ndarray:
    """``a`` as a finite float64 ``(N,)`` array, or ValueError naming ``name``."""
    v = np.asarray(a, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (N,); got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or inf")
    return v


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays must have the same number of rows N; got {lengths}")


def _histogram_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner edges of ``n_bins`` equal-width bins over the range of ``x``: ``(n_bins - 1,)``.

    A constant ``x`` gets numpy's unit-width range around its value, so it lands in one bin
    (zero entropy, zero mutual information) instead of producing NaN.
    """
    return np.histogram_bin_edges(x, bins=n_bins)[1:-1]


def _bin(x: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Bin indices in ``[0, len(inner_edges)]``; values outside the range clip to the end bins."""
    return np.digitize(x, inner_edges)


def _check_n_bins(n_bins: int) -> None:
    if int(n_bins) != n_bins or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2; got {n_bins!r}")


def _resolve_discrete(
    factors: np.ndarray, n_bins: int, discrete_factors: Sequence[bool] | None
) -> list[bool]:
    """Per-factor choice: categorical (True) or binned (False); see the module docstring."""
    k = factors.shape[1]
    if discrete_factors is None:
        return [len(np.unique(factors[:, j])) <= n_bins for j in range(k)]
    flags = [bool(f) for f in discrete_factors]
    if len(flags) != k:
        raise ValueError(f"discrete_factors has {len(flags)} entries for {k} factors")
    return flags


def _factor_labels(
    train: np.ndarray, test: np.ndarray | None, n_bins: int, discrete: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer class labels for one factor ``(N,)``, defined by the training values only.

    Categorical: labels index the sorted distinct training values; a test value never seen in
    training gets -1, a class no classifier can predict (it counts as an error, as it should).
    Binned: equal-width bins over the training range; test values outside it clip to end bins.
    """
    if discrete:
        values, train_labels = np.unique(train, return_inverse=True)
        if test is None:
            return train_labels, None
        pos = np.clip(np.searchsorted(values, test), 0, len(values) - 1)
        test_labels = np.where(values[pos] == test, pos, -1)
        return train_labels, test_labels
    edges = _histogram_edges(train, n_bins)
    return _bin(train, edges), None if test is None else _bin(test, edges)


def _one_minus_entropy(weights: np.ndarray, axis: int) -> np.ndarray:
    """``1 - H(p)`` with ``p`` = ``weights`` normalised along ``axis``, entropy in base = its size.

    A slice of all-zero weights counts as uniform (score 0), as disentanglement_lib's 1e-11
    smoothing makes it. With a single entry the base would be 1 (log 0); such a slice is
    trivially concentrated, so it scores 1.
    """
    n = weights.shape[axis]
    if n == 1:
        return np.ones(weights.shape[1 - axis])
    w = np.moveaxis(weights, axis, -1)  # (slices, n)
    totals = w.sum(axis=-1, keepdims=True)
    p = np.divide(w, totals, out=np.full_like(w, 1.0 / n), where=totals > 0)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return 1.0 + plogp.sum(axis=-1) / np.log(n)


def _group(batch_ids: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense batch index per sample ``(N,)`` and samples per batch ``(B,)``."""
    ids = np.asarray(batch_ids)
    if ids.shape != (n,):
        raise ValueError(f"batch_ids must have shape ({n},); got {ids.shape}")
    _, inverse = np.unique(ids, return_inverse=True)
    inverse = inverse.reshape(-1)  # numpy 2 keeps the input's shape; 1-D either way here
    return inverse, np.bincount(inverse)


def _within_batch_variance(
    values: np.ndarray, inverse: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Population variance of each column within each batch: ``(N, D)`` -> ``(B, D)``."""
    n_batches = counts.shape[0]
    sums = np.zeros((n_batches, values.shape[1]))
    np.add.at(sums, inverse, values)
    means = sums / counts[:, None]
    # Centre before squaring: E[x^2] - E[x]^2 cancels badly for latents far from zero.
    sq = np.zeros_like(sums)
    np.add.at(sq, inverse, (values - means[inverse]) ** 2)
    return sq / counts[:, None]


# --------------------------------------------------------------------------- MIG


def mig(
    codes: Any,
    factors: Any,
    *,
    n_bins: int = 20,
    discrete_factors: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Mutual Information Gap (Chen et al. 2018) as computed by disentanglement_lib.

    Each code dimension is discretised into ``n_bins`` equal-width bins over its own range;
    factors become labels as described in the module docstring. With ``I[d, k]`` the mutual
    information (nats, ``sklearn.metrics.mutual_info_score``) between code ``d`` and factor
    ``k`` and ``H[k]`` the factor's entropy, the gap of factor ``k`` is
    ``(largest_d I[d, k] - second largest_d I[d, k]) / H[k]``; MIG is their mean.

    Args:
        codes: ``(N, D)`` float, e.g. encoder means; any affine rescaling per dimension gives the
            same bins, so the score is scale invariant. With D = 1 the second largest MI is 0.
        factors: ``(N, K)`` ground-truth factors (degrees, ids, ...).
        n_bins: bins per code dimension and per binned factor.
        discrete_factors: optional ``K`` flags, True = use values as categories unchanged.

    Returns:
        ``{"mig": float, "mig_per_factor": [float | None] * K}``. A constant factor has zero
        entropy, so its gap is undefined: its entry is ``None`` and it is left out of the mean.
        If every factor is constant, ``mig`` is 0.0. A constant code dimension falls in one bin
        and carries zero information; it never makes the result NaN.
    """
    _check_n_bins(n_bins)
    z = _as_matrix("codes", codes)
    y = _as_matrix("factors", factors)
    _same_length(codes=z, factors=y)

    z_binned = np.stack(
        [_bin(z[:, d], _histogram_edges(z[:, d], n_bins)) for d in range(z.shape[1])], 1
    )
    flags = _resolve_discrete(y, n_bins, discrete_factors)

    per_factor: list[float | None] = []
    for k, discrete in enumerate(flags):
        labels, _ = _factor_labels(y[:, k], None, n_bins, discrete)
        entropy = mutual_info_score(labels, labels)
        if entropy <= 0.0:
            per_factor.append(None)
            continue
        mi = np.array([mutual_info_score(labels, z_binned[:, d]) for d in range(z.shape[1])])
        top = np.sort(mi)[::-1]
        second = top[1] if top.shape[0] > 1 else 0.0
        per_factor.append(float((top[0] - second) / entropy))

    scored = [g for g in per_factor if g is not None]
    return {"mig": float(np.mean(scored)) if scored else 0.0, "mig_per_factor": per_factor}


# --------------------------------------------------------------------------- DCI


def _fit_one_factor(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    random_state: int,
    gbt_params: dict[str, Any],
) -> tuple[np.ndarray, float, float] | None:
    """Importance ``(D,)``, train and test accuracy of one factor's classifier; None if constant."""
    if np.unique(y_train).shape[0] < 2:
        return None
    model = GradientBoostingClassifier(random_state=random_state, **gbt_params)
    model.fit(x_train, y_train)
    importance = np.abs(model.feature_importances_)
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    test_acc = float(np.mean(model.predict(x_test) == y_test))
    return importance, train_acc, test_acc


def dci(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    n_bins: int = 20,
    random_state: int = 0,
    discrete_factors: Sequence[bool] | None = None,
    n_jobs: int = -1,
    **gbt_kwargs: Any,
) -> dict[str, Any]:
    """Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018).

    As in disentanglement_lib: one ``GradientBoostingClassifier`` per factor predicts the
    factor's class (labels from the training factors, see the module docstring) from all codes.
    Its ``feature_importances_`` fill column ``k`` of the importance matrix ``R`` (D x K).

    * disentanglement = sum_d rho_d (1 - H_K(R[d, :] / sum R[d, :])), with rho_d = code d's
      share of the total importance (codes that matter to no factor weigh nothing);
    * completeness = the same over factors: sum_k rho_k (1 - H_D(R[:, k] / sum R[:, k])). Each
      fitted column sums to 1, so this is the plain mean over the non-constant factors;
    * informativeness = mean test accuracy over factors (``informativeness_train``: train).

    Defaults (``DCI_GBT_DEFAULTS``) are disentanglement_lib's probe, 100 stages of depth-3
    trees; any ``GradientBoostingClassifier`` argument in ``gbt_kwargs`` overrides them. Scores
    from different probe settings are not comparable (see ``DCI_GBT_DEFAULTS``).

    Args:
        codes_train: ``(N_train, D)`` float codes used to fit the classifiers.
        factors_train: ``(N_train, K)`` factors; they define the classes and bin edges.
        codes_test: ``(N_test, D)`` held-out codes.
        factors_test: ``(N_test, K)`` held-out factors.
        n_bins: classes per binned (continuous) factor.
        random_state: seed passed to every classifier; equal seeds give identical results.
        discrete_factors: optional ``K`` flags overriding the automatic categorical choice.
        n_jobs: threads fitting factors in parallel (joblib convention, -1 = all cores; at
            most K are busy); results do not depend on it.
        **gbt_kwargs: overrides for ``GradientBoostingClassifier``'s other arguments.

    Returns:
        ``{"disentanglement", "completeness", "informativeness", "informativeness_train"}`` as
        floats and ``"importance"``: R as a D-long list of K-long lists. A constant training
        factor is excluded: its column is zero and it is left out of both accuracies. If every
        factor is constant, all four scores are 0.0.
    """
    _check_n_bins(n_bins)
    x_train = _as_matrix("codes_train", codes_train)
    y_train = _as_matrix("factors_train", factors_train)
    x_test = _as_matrix("codes_test", codes_test)
    y_test = _as_matrix("factors_test", factors_test)
    _same_length(codes_train=x_train, factors_train=y_train)
    _same_length(codes_test=x_test, factors_test=y_test)
    if x_test.shape[1] != x_train.shape[1] or y_test.shape[1] != y_train.shape[1]:
        raise ValueError(
            f"train and test widths differ: codes {x_train.shape[1]} vs {x_test.shape[1]}, "
            f"factors {y_train.shape[1]} vs {y_test.shape[1]}"
        )
    gbt_params = {**DCI_GBT_DEFAULTS, **gbt_kwargs}

    flags = _resolve_discrete(y_train, n_bins, discrete_factors)
    labels = [
        _factor_labels(y_train[:, k], y_test[:, k], n_bins, discrete)
        for k, discrete in enumerate(flags)
    ]
    # Each classifier is seeded alike and independent of the others, so running them in threads
    # cannot change the result; sklearn's tree builder releases the GIL.
    fits = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fit_one_factor)(x_train, ytr, x_test, yte, random_state, gbt_params)
        for ytr, yte in labels
    )

    n_codes, n_factors = x_train.shape[1], y_train.shape[1]
    importance = np.zeros((n_codes, n_factors))
    train_acc, test_acc = [], []
    for k, fit in enumerate(fits):
        if fit is None:
            continue
        importance[:, k], tr, te = fit
        train_acc.append(tr)
        test_acc.append(te)

    total = importance.sum()
    if total > 0:
        disentanglement = float(
            np.sum(_one_minus_entropy(importance, 1) * importance.sum(1) / total)
        )
        completeness = float(np.sum(_one_minus_entropy(importance, 0) * importance.sum(0) / total))
    else:
        # No classifier made a split (all factors constant or unlearnable): nothing is explained.
        disentanglement = completeness = 0.0
    return {
        "disentanglement": disentanglement,
        "completeness": completeness,
        "informativeness": float(np.mean(test_acc)) if test_acc else 0.0,
        "informativeness_train": float(np.mean(train_acc)) if train_acc else 0.0,
        "importance": importance.tolist(),
    }


# --------------------------------------------------------------------------- paper metrics


def equivariance(latent: Any, factor: Any) -> float:
    """|Pearson r| between one latent and its factor, both ``(N,)`` (paper Fig. 6).

    The absolute value because a latent may encode its factor with either sign. Returns 0.0
    when either input is constant (r is 0/0 there, and a constant latent tracks nothing).
    """
    z = _as_vector("latent", latent)
    f = _as_vector("factor", factor)
    _same_length(latent=z, factor=f)
    zc, fc = z - z.mean(), f - f.mean()
    denom = np.sqrt(np.dot(zc, zc) * np.dot(fc, fc))
    if denom == 0.0:
        return 0.0
    # Clip: rounding can put |r| a hair above 1.
    return float(min(1.0, abs(np.dot(zc, fc)) / denom))


def invariance_ratio(latent: Any, batch_ids: Any, varies: Any) -> float:
    """Within-batch variance of a latent where its factor is fixed over where it varies.

    ``mean_b Var(latent | batch b), b with the factor fixed`` divided by the same mean over
    batches where the factor varies; population variance, each batch weighing the same.
    Lower is better: 0 means the latent ignores everything but its own factor.

    Args:
        latent: ``(N,)`` one latent's values (e.g. encoder means).
        batch_ids: ``(N,)`` minibatch id of each sample (any hashable-sortable values).
        varies: ``(N,)`` bool, True where the sample's batch varies this latent's factor; it
            must be the same for every sample of a batch.

    Returns:
        The ratio. Degenerate cases: if the latent has zero variance in both kinds of batch
        (a dead latent) the ratio is 0/0 and 1.0 is returned, the value of a latent that does
        not distinguish the two kinds of batch; if it varies only where its factor is fixed
        (denominator 0, numerator > 0) the honest value is ``inf``, which is returned (finite
        stand-ins would rank it among good latents; Python's json writes it as ``Infinity``).

    Raises:
        ValueError: if there are no fixed or no varying batches (the caller passed the wrong
            batches; no model property can be read from that), or ``varies`` is not constant
            within a batch.
    """
    z = _as_vector("latent", latent)
    v = np.asarray(varies)
    if v.shape != z.shape or v.dtype != bool:
        raise ValueError(f"varies must be a bool array of shape {z.shape}; got {v.dtype} {v.shape}")
    inverse, counts = _group(batch_ids, z.shape[0])
    varying_count = np.bincount(inverse, weights=v.astype(np.float64), minlength=counts.shape[0])
    if not np.all((varying_count == 0) | (varying_count == counts)):
        raise ValueError("varies must be constant within each batch")
    batch_varies = varying_count == counts
    if batch_varies.all() or not batch_varies.any():
        raise ValueError(
            f"need batches where the factor is fixed and where it varies; got "
            f"{int((~batch_varies).sum())} fixed and {int(batch_varies.sum())} varying"
        )
    var = _within_batch_variance(z[:, None], inverse, counts)[:, 0]  # (B,)
    fixed, varying = float(var[~batch_varies].mean()), float(var[batch_varies].mean())
    if varying == 0.0:
        return 1.0 if fixed == 0.0 else float("inf")
    return fixed / varying


def largest_variance_latent(codes: Any, batch_ids: Any) -> int:
    """Index of the latent with the largest mean within-batch variance: ``(N, D)`` -> int.

    The paper's rule for reading a factor off the entangled baseline (sec. 4.1.1): pass only
    the batches in which that factor varies. Ties go to the lowest index.
    """
    z = _as_matrix("codes", codes)
    inverse, counts = _group(batch_ids, z.shape[0])
    return int(np.argmax(_within_batch_variance(z, inverse, counts).mean(axis=0)))


def linear_calibration(latent: Any, factor: Any) -> tuple[float, float]:
    """Least-squares fit ``latent ~ slope * factor + intercept`` on ``(N,)`` arrays.

    Fitted in this direction (factor -> latent) because callers ask "which latent value means
    30 degrees?": use ``factor_to_latent``. ``latent_to_factor`` inverts the same line.

    Raises:
        ValueError: if the factor is constant (the slope is undefined).
    """
    z = _as_vector("latent", latent)
    f = _as_vector("factor", factor)
    _same_length(latent=z, factor=f)
    fc = f - f.mean()
    ss = float(np.dot(fc, fc))
    if ss == 0.0:
        raise ValueError("cannot calibrate against a constant factor")
    slope = float(np.dot(fc, z - z.mean()) / ss)
    return slope, float(z.mean() - slope * f.mean())


def factor_to_latent(value: Any, slope: float, intercept: float) -> np.ndarray | float:
    """Latent value(s) that the calibration line assigns to factor value(s) (degrees)."""
    out = slope * np.asarray(value, dtype=np.float64) + intercept
    return float(out) if out.ndim == 0 else out


def latent_to_factor(latent: Any, slope: float, intercept: float) -> np.ndarray | float:
    """Factor value(s) (degrees) that the calibration line assigns to latent value(s).

    Raises:
        ValueError: if ``slope`` is 0 (the latent does not track the factor at all).
    """
    if slope == 0.0:
        raise ValueError("slope is 0: the latent carries no information about the factor")
    out = (np.asarray(latent, dtype=np.float64) - intercept) / slope
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- angles


def angle_difference(a: Any, b: Any) -> np.ndarray:
    """``a - b`` in degrees, wrapped into [-180, 180)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return (d + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class AngleReadout:
    """Reads a factor (degrees) back from L latents; fitted by ``fit_angle_readout``.

    Linear factor: ``degrees = weights . z + bias``. Circular factor (a 360-degree range) with
    one latent: ``degrees = weights[0] * z + bias`` modulo 360 (a line that wraps, so a latent
    that sweeps the circle once with a seam reads back exactly); with two or more latents: the
    angle of the point ``(cos, sin) = A z + c`` (a (cos, sin) fit). ``lo`` is where a circular
    factor's range starts: read-outs are wrapped into [lo, lo + 360).
    """

    circular: bool
    weights: tuple[float, ...]
    bias: float
    lo: float = 0.0
    cos_sin: tuple[tuple[float, ...], ...] | None = None  # (2, L + 1) for L >= 2, circular

    def degrees(self, codes: Any) -> np.ndarray:
        """``codes`` (N, L) -> (N,) degrees."""
        z = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
        if self.cos_sin is not None:
            m = np.asarray(self.cos_sin)
            c, s = (z @ m[:, :-1].T + m[:, -1]).T
            out = np.degrees(np.arctan2(s, c))
        else:
            out = z @ np.asarray(self.weights) + self.bias
        return self.lo + (out - self.lo) % 360.0 if self.circular else out


def _resultant(residual_deg: np.ndarray) -> tuple[float, float]:
    """Length and direction (degrees) of the mean unit vector of angles."""
    v = np.mean(np.exp(1j * np.radians(residual_deg)))
    return float(abs(v)), float(np.degrees(np.angle(v)))


def fit_angle_readout(codes: Any, factor: Any, *, circular: bool, lo: float = 0.0) -> AngleReadout:
    """Least-squares read-out of ``factor`` (N,) degrees from ``codes`` (N, L); see AngleReadout.

    A circular one-latent read-out maximises the mean resultant length of the residuals
    ``factor - gain * z`` over the gain (a grid of gains up to two turns across the latent's
    range, both signs, then a bounded refinement; the offset is the residuals' circular mean).
    """
    z = _as_matrix("codes", codes)
    f = _as_vector("factor", factor)
    _same_length(codes=z, factor=f)
    n, n_latents = z.shape
    x = np.hstack([z, np.ones((n, 1))])
    if not circular:
        w, *_ = np.linalg.lstsq(x, f, rcond=None)
        return AngleReadout(False, tuple(map(float, w[:-1])), float(w[-1]))
    if n_latents >= 2:
        target = np.stack([np.cos(np.radians(f)), np.sin(np.radians(f))], 1)
        m, *_ = np.linalg.lstsq(x, target, rcond=None)  # (L + 1, 2)
        return AngleReadout(True, (0.0,) * n_latents, 0.0, lo,
                            tuple(tuple(map(float, row)) for row in m.T))
    from scipy.optimize import minimize_scalar

    zz = z[:, 0]
    span = float(np.ptp(zz))
    if span == 0.0:
        raise ValueError("cannot calibrate a constant latent")

    def loss(gain: float) -> float:
        return -_resultant(f - gain * zz)[0]

    turn = 360.0 / span
    grid = np.linspace(-2 * turn, 2 * turn, 801)
    best = grid[int(np.argmin([loss(g) for g in grid]))]
    step = grid[1] - grid[0]
    gain = float(minimize_scalar(loss, bounds=(best - step, best + step), method="bounded").x)
    offset = _resultant(f - gain * zz)[1]
    return AngleReadout(True, (gain,), offset, lo)


def circular_equivariance(factor: Any, readout_deg: Any) -> float:
    """How well a read-out follows a circular factor: the mean resultant length of the errors
    ``factor - readout`` (N,) degrees, in [0, 1]. 1: the read-out is the angle up to a constant
    turn; about 1/sqrt(N): unrelated. Unlike a Pearson r it has no seam at 0/360 degrees."""
    f = _as_vector("factor", factor)
    r = _as_vector("readout", readout_deg)
    _same_length(factor=f, readout=r)
    return _resultant(f - r)[0]


def median_angle_error(factor: Any, readout_deg: Any, *, circular: bool) -> float:
    """Median absolute error (degrees) of reading a factor back; wrapped when circular."""
    f = _as_vector("factor", factor)
    r = _as_vector("readout", readout_deg)
    _same_length(factor=f, readout=r)
    d = angle_difference(r, f) if circular else r - f
    return float(np.median(np.abs(d)))


# --------------------------------------------------------------------------- identity


def top1_retrieval(queries: Any, gallery: Any, labels: Any) -> float:
    """Share of queries whose nearest gallery row (squared Euclidean) is their own.

    queries: (M, P); gallery: (K, P); labels: (M,) int, the gallery row each query belongs to.
    Ties go to the lowest gallery index. Chance is 1/K.
    """
    q = _as_matrix("queries", np.asarray(queries).reshape(len(queries), -1))
    g = _as_matrix("gallery", np.asarray(gallery).reshape(len(gallery), -1))
    lab = np.asarray(labels)
    if lab.shape != (q.shape[0],):
        raise ValueError(f"labels must have shape ({q.shape[0]},); got {lab.shape}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries and gallery widths differ: {q.shape[1]} vs {g.shape[1]}")
    d = (q**2).sum(1)[:, None] - 2 * q @ g.T + (g**2).sum(1)[None]  # (M, K)
    return float(np.mean(np.argmin(d, axis=1) == lab))


# --------------------------------------------------------------------------- image detail


def high_pass(images: Any, sigma: float) -> np.ndarray:
    """images (..., H, W) minus their Gaussian blur of sd ``sigma`` pixels over the last two
    axes (edges replicated): the fine structure a blurred rendering lacks. float64."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"images must have at least 2 dims (..., H, W); got shape {x.shape}")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
    return x - gaussian_filter(x, (0,) * (x.ndim - 2) + (sigma, sigma), mode="nearest")


def interior(truth: Any, margin: int) -> np.ndarray:
    """(..., H, W) bool: the pixels of each image's object (any value above 0, the rendered
    background being exactly 0) at least ``margin`` pixels (chessboard distance) inside its
    outline, so that the outline's own edge is left out. margin 0: every pixel."""
    t = np.asarray(truth)
    if t.ndim < 2:
        raise ValueError(f"images must have at least 2 dims (..., H, W); got shape {t.shape}")
    if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
        raise ValueError(f"margin must be an int >= 0 (pixels), got {margin!r}")
    if margin == 0:
        return np.ones(t.shape, dtype=bool)
    square = np.ones((1,) * (t.ndim - 2) + (2 * margin + 1,) * 2, dtype=bool)
    return binary_erosion(t > 0, square)


def detail(pred: Any, truth: Any, sigma: float, mask: Any = None) -> float:
    """Share of the truth's fine structure that ``pred`` reproduces, pooled over all images
    (over the pixels of ``mask`` where given, e.g. :func:`interior`):
    ``1 - sum (hp(pred) - hp(truth))^2 / sum hp(truth)^2`` with ``hp = high_pass(., sigma)``.

    1 for an exact copy; 0 for any image without fine structure (a blur, a constant), however
    low its MSE; below 0 for fine structure in the wrong places (a sharp image of another
    view), as in MSE. Inside the outline it tells a renderer from a blur, which MSE cannot: a
    head-shaped blur with a low MSE draws no eyes, nose or mouth and scores 0 there.
    """
    p, t = np.asarray(pred), np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and truth {t.shape} differ in shape")
    m = np.ones(t.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != t.shape:
        raise ValueError(f"mask {m.shape} and truth {t.shape} differ in shape")
    hp_t = high_pass(t, sigma)[m]
    energy = float(np.sum(hp_t**2))
    if energy == 0:
        raise ValueError("truth has no fine structure at this sigma (inside the mask): "
                         "detail is undefined")
    return 1.0 - float(np.sum((high_pass(p, sigma)[m] - hp_t) ** 2)) / energy
