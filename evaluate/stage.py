"""The evaluate stage: the paper's claims as numbers (metrics JSON) and pictures (PNG).

Ground truth comes from the test shards alone (no renderer): every extrinsic test batch of a
factor lies on one shared grid of that factor's values, identity n in the n-th batch
(render/batches.py), so the truth of any novel view is a stored image, for the identity and for
every other test identity at that view. Imported shards are scored the same way.

For each training seed, each model (DC-IGN and the entangled baseline) and each disentangled
factor f:
- which latent is f's: DC-IGN's assigned one; for the baseline the paper's rule (sec. 4.1.1),
  the latent with the largest within-batch variance on f-batches, chosen on TRAIN batches;
- calibration, fitted on train f-batches: a line latent = slope * degrees + intercept (which
  latent value means a target angle), and the read-out degrees = gain * latent + offset (the
  angle a latent value means), wrapped modulo 360 for a circular factor (a 360-degree range);
- equivariance on the test grid: |Pearson r| of latent and f, or for a circular factor the
  mean resultant length of the read-out's errors; angle_error_deg: median |read-out - truth|;
- invariance: that latent's within-batch variance where f is fixed over where it varies;
- novel views: encode test identity n at grid view i, set the latent to the calibrated value of
  grid view j, decode, and compare with the stored image of n at j: novel_view_mse, its ratio
  to the identity-free oracle (the mean of every other test identity's image at j), the model's
  own floor (its reconstruction of the image at j), and identity retrieval (is the re-render
  nearest n's image at j among all test identities' images at j?);
- identity retrieval of reconstructions, and of the intrinsic code across views (identity n at
  view i among all identities at view j, by the latents that carry no extrinsic factor);
- detail of the novel views and of the reconstructions at the same target views: the share of
  the truth's fine structure (finer than a small blur) they redraw on the pixels well inside
  the object's outline, e.g. eyes, nose and mouth; a head-shaped blur scores 0, however low
  its MSE (evaluate/metrics.py `detail`).
Plus test reconstruction MSE (latents = mu), MIG and DCI on the test codes. Model-free
references (copying the input, the oracle, chance; the detail of the copied input and of the
oracle) sit under "reference". With several
training seeds, metrics/<dataset>.json holds each model's mean and (under "sd") its standard
deviation over seeds; eval/<dataset>/per_seed.json holds every seed's numbers.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic import write_text
from core.device import choose_device
from core.params import EvaluateConfig, Params
from core.shards import SplitIndex, scan_splits
from core.vocab import INTRINSIC, MODELS, grid_values, is_circular
from evaluate import metrics as M
from evaluate.data import Batches, decode, encode, load_batches
from train import checkpoint
from train.clamp import LatentAssignment
from train.model import DCIGN

log = logging.getLogger(__name__)
CALIBRATION = "calibration.json"
PER_SEED = "per_seed.json"


@dataclass(frozen=True)
class FactorLatent:
    """Which latent carries a factor, and how it maps to and from degrees (module docstring)."""

    factor: str
    latent: int
    slope: float  # latent = slope * degrees + intercept (linear factors)
    intercept: float
    gain: float  # degrees = gain * latent + offset (modulo 360 when circular)
    offset: float
    lo: float
    hi: float
    circular: bool = False
    center: float = 0.0  # circular: the mean train latent; targets map to the turn around it

    def latent_value(self, degrees: float | np.ndarray) -> float | np.ndarray:
        """The latent value that means `degrees`."""
        if not self.circular:
            return M.factor_to_latent(degrees, self.slope, self.intercept)
        here = self.gain * self.center + self.offset
        out = self.center + M.angle_difference(degrees, here) / self.gain
        return float(out) if np.ndim(out) == 0 else out

    def degrees(self, latent: np.ndarray) -> np.ndarray:
        """The angle (degrees) that latent values (N,) mean."""
        return self.readout.degrees(np.asarray(latent).reshape(-1, 1))

    @property
    def readout(self) -> M.AngleReadout:
        return M.AngleReadout(self.circular, (self.gain,), self.offset, self.lo)

    def grid(self, n: int) -> np.ndarray:
        """n evenly spaced degrees over the factor's range (no duplicate end when circular)."""
        return grid_values((self.lo, self.hi), n)


@dataclass
class LoadedModel:
    name: str
    model: DCIGN
    assignment: LatentAssignment
    ckpt_path: Path


@dataclass(frozen=True)
class Grid:
    """The test views of one factor: identity[n] seen at every grid view b.

    images uint8 (n, B, C, H, W); identity int64 (n,); factors float32 (B, F) the views in
    degrees (columns = factor_names), the same for every identity; rows (n,) the test batches.
    """

    factor: str
    images: np.ndarray
    identity: np.ndarray
    factors: np.ndarray
    rows: np.ndarray
    factor_names: tuple[str, ...]

    @property
    def values(self) -> np.ndarray:
        """(B,) degrees of the grid's own factor."""
        return self.factors[:, self.factor_names.index(self.factor)]

    def __len__(self) -> int:
        return len(self.identity)


def grids_of(test: Batches, factors: tuple[str, ...], where: Path) -> dict[str, Grid]:
    """Each factor's grid from the test batches of its kind (first batch of each identity)."""
    out = {}
    for f in factors:
        rows = [i for i, k in enumerate(test.kinds) if k == f]
        if not rows:
            raise ValueError(f"{where}: no test batches of kind {f!r}")
        ref = test.factors[rows[0]]
        if any(not np.array_equal(test.factors[i], ref) for i in rows):
            raise ValueError(f"{where}: the test {f} batches are not on one shared grid of views "
                             f"(shards from an older version?); re-render or re-import them")
        keep, seen = [], set()
        for i in rows:
            ident = int(test.identity[i, 0])
            if ident not in seen:
                seen.add(ident)
                keep.append(i)
        if len(keep) < 2:
            raise ValueError(f"{where}: the test {f} batches show {len(keep)} identity; "
                             f"identity retrieval needs at least 2")
        k = np.array(keep)
        out[f] = Grid(f, test.images[k], test.identity[k, 0].astype(np.int64), ref, k,
                      test.factor_names)
    return out


def positions(size: int, n: int) -> np.ndarray:
    """Up to n grid positions evenly spread over 0..size-1 (the ends included)."""
    return np.unique(np.round(np.linspace(0, size - 1, min(n, size))).astype(int))


def view_pairs(size: int, n_inputs: int, n_targets: int) -> list[tuple[int, int]]:
    """(input position, target position) pairs of the novel-view task, input != target."""
    return [(int(i), int(j)) for i in positions(size, n_inputs)
            for j in positions(size, n_targets) if i != j]


def batch_ids(n: int, b: int) -> np.ndarray:
    """(n, b) id of the minibatch each image of n minibatches of b belongs to."""
    return np.repeat(np.arange(n)[:, None], b, axis=1)


def find_latent(model_name: str, assignment: LatentAssignment, codes: np.ndarray,
                factor: str) -> int:
    """DC-IGN: the assigned latent. Baseline: the paper's largest-variance rule on codes
    (n, B, D) of batches in which only `factor` varies."""
    if model_name == "dcign":
        return assignment.active_indices(factor)[0]
    ids = batch_ids(*codes.shape[:2])
    return M.largest_variance_latent(codes.reshape(-1, codes.shape[-1]), ids.ravel())


def calibrate(model_name: str, assignment: LatentAssignment, train_codes: np.ndarray,
              train: Batches, factor: str, rng: tuple[float, float]) -> FactorLatent:
    mask = np.array([k == factor for k in train.kinds])
    codes = train_codes[mask]  # (n_f, B, D)
    j = find_latent(model_name, assignment, codes, factor)
    z, deg = codes[..., j].ravel(), train.factor(factor)[mask].ravel()
    circular = is_circular(rng)
    readout = M.fit_angle_readout(z[:, None], deg, circular=circular, lo=float(rng[0]))
    gain, offset = readout.weights[0], readout.bias
    if circular:  # the same line, read the other way, around the mean latent
        slope, intercept = (1.0 / gain, -offset / gain) if gain else (0.0, float(np.mean(z)))
    else:
        slope, intercept = M.linear_calibration(z, deg)
    return FactorLatent(factor, int(j), slope, intercept, gain, offset, float(rng[0]),
                        float(rng[1]), circular, float(np.mean(z)))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))


def _unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 255


def leave_one_out_mean(images: np.ndarray) -> np.ndarray:
    """(n, ...) -> (n, ...): for each row, the mean of all the other rows."""
    x = images.astype(np.float64)
    return ((x.sum(0, keepdims=True) - x) / (len(x) - 1)).astype(np.float32)


@dataclass(frozen=True)
class Detail:
    """How the `detail` metrics read an image: the blur sd and the outline margin, in pixels."""

    sigma: float
    margin: int

    @classmethod
    def of(cls, e: EvaluateConfig, image_size: int) -> Detail:
        return cls(e.sigma_px(image_size), e.margin_px(image_size))

    def score(self, pred: np.ndarray, truth: np.ndarray) -> float | None:
        """M.detail inside the truth's outline; pred and truth (..., C, H, W) in [0, 1]. The
        outline is where any channel is lit; None (undefined) where no pixel lies inside it,
        e.g. objects thinner than twice the margin."""
        inside = M.interior(truth.max(axis=-3, keepdims=True), self.margin)  # (..., 1, H, W)
        if not inside.any():
            return None
        return M.detail(pred, truth, self.sigma, np.broadcast_to(inside, truth.shape))


def references(grids: dict[str, Grid], pairs: dict[str, list[tuple[int, int]]],
               detail: Detail) -> dict:
    """Model-free bars for the novel-view task, on the same (identity, input, target) triples:
    copying the input, the identity-free oracle, and retrieval by the copied input; and the
    same two bars for the detail a rendering keeps."""
    copy, oracle, copy_id, copy_detail, oracle_detail = {}, {}, {}, {}, {}
    for f, g in grids.items():
        x = _unit(g.images)  # (n, B, C, H, W)
        labels = np.arange(len(g))
        targets = sorted({j for _, j in pairs[f]})
        loo = {j: leave_one_out_mean(x[:, j]) for j in targets}
        oracle_at = {j: _mse(loo[j], x[:, j]) for j in targets}
        c, o, r = [], [], []
        for i, j in pairs[f]:
            c.append(_mse(x[:, i], x[:, j]))
            o.append(oracle_at[j])
            r.append(M.top1_retrieval(x[:, i], x[:, j], labels))
        copy[f], oracle[f], copy_id[f] = (float(np.mean(v)) for v in (c, o, r))
        # Pooled over the pairs as the models' detail is: inputs (n, P, ...) against targets.
        tgt = x[:, [j for _, j in pairs[f]]]
        copy_detail[f] = detail.score(x[:, [i for i, _ in pairs[f]]], tgt)
        oracle_detail[f] = detail.score(np.stack([loo[j] for _, j in pairs[f]], 1), tgt)
    n = {f: len(g) for f, g in grids.items()}
    return {"novel_view_copy_mse": copy, "novel_view_oracle_mse": oracle,
            "identity_retrieval_copy": copy_id,
            "identity_retrieval_chance": {f: 1.0 / k for f, k in n.items()},
            "detail_copy": copy_detail, "detail_oracle": oracle_detail,
            "test_identities": n}


def novel_views(model: DCIGN, grid: Grid, codes: np.ndarray, fl: FactorLatent,
                pairs: list[tuple[int, int]], device) -> np.ndarray:
    """Re-renders (n, P, C, H, W) in [0, 1]: identity n's code at input view i with the
    factor's latent set to the calibrated value of target view j, for the P pairs (i, j)."""
    src = codes[:, [i for i, _ in pairs]].copy()  # (n, P, D)
    src[..., fl.latent] = fl.latent_value(grid.values[[j for _, j in pairs]])[None]
    return decode(model, src, device)


def score_grid(model: DCIGN, grid: Grid, codes: np.ndarray, recon: np.ndarray,
               fl: FactorLatent, pairs: list[tuple[int, int]], intrinsic: list[int],
               detail: Detail, device) -> dict:
    """Novel-view, identity and detail numbers of one model on one factor's grid; codes
    (n, B, D) and their decodings recon (n, B, C, H, W)."""
    truth = _unit(grid.images)  # (n, B, C, H, W)
    targets = [j for _, j in pairs]
    pred = novel_views(model, grid, codes, fl, pairs, device)
    labels = np.arange(len(grid))
    nv_id = [M.top1_retrieval(pred[:, p], truth[:, j], labels) for p, j in enumerate(targets)]
    rec_id = [M.top1_retrieval(recon[:, b], truth[:, b], labels) for b in range(truth.shape[1])]
    z_int = codes[..., intrinsic]
    int_id = [M.top1_retrieval(z_int[:, i], z_int[:, j], labels) for i, j in pairs]
    return {"novel_view_mse": _mse(pred, truth[:, targets]),
            "floor_mse": _mse(recon[:, targets], truth[:, targets]),
            "novel_view_detail": detail.score(pred, truth[:, targets]),
            "reconstruction_detail": detail.score(recon[:, targets], truth[:, targets]),
            "novel_view_retrieval": float(np.mean(nv_id)),
            "reconstruction_retrieval": float(np.mean(rec_id)),
            "intrinsic_retrieval": float(np.mean(int_id))}


def score_model(lm: LoadedModel, train: Batches, test: Batches, grids: dict[str, Grid],
                ranges: dict[str, tuple[float, float]], pairs: dict[str, list[tuple[int, int]]],
                refs: dict, params: Params, device) -> tuple[dict, dict, np.ndarray]:
    """(metrics, calibration entry, test codes (n, B, D)) of one trained model."""
    e = params.evaluate
    factors = tuple(grids)
    tr_codes, te_codes = (encode(lm.model, b.images, device) for b in (train, test))
    recon = decode(lm.model, te_codes, device)
    out: dict = {"test_mse": _mse(recon, _unit(test.images))}
    groups = ("equivariance", "angle_error_deg", "invariance", "novel_view_mse",
              "novel_view_vs_oracle", "floor_mse")
    out.update({g: {} for g in groups})
    retrieval: dict = {"novel_view": {}, "reconstruction": {}, "intrinsic": {}}
    detail: dict = {"novel_view": {}, "reconstruction": {}}
    cal = {f: calibrate(lm.name, lm.assignment, tr_codes, train, f, ranges[f]) for f in factors}
    intrinsic = [d for d in range(te_codes.shape[-1])
                 if d not in {fl.latent for fl in cal.values()}]
    ids = batch_ids(*test.identity.shape).ravel()
    for f in factors:
        fl, g = cal[f], grids[f]
        z = te_codes[g.rows][..., fl.latent].ravel()
        deg = test.factor(f)[g.rows].ravel()
        read = fl.degrees(z)
        out["equivariance"][f] = (M.circular_equivariance(deg, read) if fl.circular
                                  else M.equivariance(z, deg))
        out["angle_error_deg"][f] = M.median_angle_error(deg, read, circular=fl.circular)
        varies = np.repeat(np.array([k == f for k in test.kinds])[:, None],
                           test.identity.shape[1], axis=1).ravel()
        out["invariance"][f] = _finite(M.invariance_ratio(te_codes[..., fl.latent].ravel(), ids,
                                                          varies))
        s = score_grid(lm.model, g, te_codes[g.rows], recon[g.rows], fl, pairs[f], intrinsic,
                       Detail.of(e, g.images.shape[-1]), device)
        out["novel_view_mse"][f] = s["novel_view_mse"]
        out["novel_view_vs_oracle"][f] = s["novel_view_mse"] / refs["novel_view_oracle_mse"][f]
        out["floor_mse"][f] = s["floor_mse"]
        retrieval["novel_view"][f] = s["novel_view_retrieval"]
        retrieval["reconstruction"][f] = s["reconstruction_retrieval"]
        retrieval["intrinsic"][f] = s["intrinsic_retrieval"]
        detail["novel_view"][f] = s["novel_view_detail"]
        detail["reconstruction"][f] = s["reconstruction_detail"]
    out["identity_retrieval"] = retrieval
    out["detail"] = detail
    flat_codes = te_codes.reshape(-1, te_codes.shape[-1])[: e.max_codes]
    flat_f = np.stack([test.factor(f).ravel() for f in factors], 1)[: e.max_codes]
    out["mig"] = M.mig(flat_codes, flat_f, n_bins=e.mig_bins)["mig"]
    dci = M.dci(tr_codes.reshape(-1, tr_codes.shape[-1]),
                np.stack([train.factor(f).ravel() for f in factors], 1), flat_codes, flat_f,
                n_bins=e.mig_bins, random_state=params.seed, n_estimators=e.dci_trees,
                max_depth=e.dci_depth)
    out["dci"] = {k: dci[k] for k in ("disentanglement", "completeness", "informativeness")}
    entry = {"checkpoint": str(lm.ckpt_path), "checkpoint_sha256": checkpoint.digest(lm.ckpt_path),
             "factors": {f: fl.__dict__ for f, fl in cal.items()}}
    return out, entry, te_codes


def _leaves(trees: list) -> object:
    """Nested dicts of numbers -> the same shape holding lists (one value per tree)."""
    if isinstance(trees[0], dict):
        return {k: _leaves([t[k] for t in trees]) for k in trees[0]}
    return trees


def mean_sd(trees: list[dict]) -> tuple[dict, dict]:
    """Leafwise mean and sample standard deviation (None for a single tree) over seeds;
    None leaves (undefined metrics) are left out, and a leaf None in every tree stays None."""

    def walk(node: object) -> tuple[object, object]:
        if isinstance(node, dict):
            pairs = {k: walk(v) for k, v in node.items()}
            return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
        vals = [float(v) for v in node if v is not None]  # type: ignore[union-attr]
        if not vals:
            return None, None
        sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        return float(np.mean(vals)), sd

    return walk(_leaves(trees))  # type: ignore[return-value]


def load_models(checkpoints: dict[str, Path], dataset: str, device,
                data: dict[str, str] | None = None) -> dict[str, LoadedModel]:
    """The models of one seed; data: the shards' fingerprints, which each checkpoint must
    have been trained on (None: not checked)."""
    models = {}
    for name in MODELS:
        model, ckpt = checkpoint.load_model(checkpoints[name], device=device)
        if ckpt["dataset"] != dataset:
            raise ValueError(f"{checkpoints[name]}: a {ckpt['dataset']} model, not {dataset}")
        if ckpt["model_kind"] != name:
            raise ValueError(f"{checkpoints[name]}: a {ckpt['model_kind']} model, not {name}")
        if data is not None and ckpt.get("data") != data:
            raise ValueError(f"{checkpoints[name]}: trained on other shards (fingerprints "
                             f"{ckpt.get('data')}) than these ({data}); retrain it or pass the "
                             f"data it was trained on (--data)")
        models[name] = LoadedModel(name, model, checkpoint.assignment_of(ckpt), checkpoints[name])
    return models


@dataclass(frozen=True)
class EvalInputs:
    """What every model of a dataset is scored on: the data, grids, view pairs, references."""

    test_idx: SplitIndex
    data: dict[str, str]  # the shards' fingerprints: {split: SplitIndex.fingerprint}
    train: Batches
    test: Batches
    factors: tuple[str, ...]
    grids: dict[str, Grid]
    ranges: dict[str, tuple[float, float]]
    pairs: dict[str, list[tuple[int, int]]]
    refs: dict


def eval_inputs(params: Params, dataset: str, data_dir: Path) -> EvalInputs:
    """Read a dataset's shards for scoring (see :func:`score_model`)."""
    e = params.evaluate
    train_idx, test_idx = scan_splits(data_dir, dataset, "evaluates")
    per_kind = max(1, math.ceil(e.max_codes / train_idx.batch_size / len(train_idx.kinds)))
    train = load_batches(train_idx, per_kind)
    test = load_batches(test_idx, 10**9)  # the whole test split
    factors = tuple(train_idx.latent_factors)
    grids = grids_of(test, factors, data_dir / "test")
    pairs = {f: view_pairs(g.images.shape[1], e.novel_view_inputs, e.novel_view_targets)
             for f, g in grids.items()}
    data = {"train": train_idx.fingerprint, "test": test_idx.fingerprint}
    return EvalInputs(test_idx, data, train, test, factors, grids,
                      {f: test_idx.factor_ranges[f] for f in factors}, pairs,
                      references(grids, pairs, Detail.of(e, test_idx.image_size)))


def evaluate_dataset(params: Params, dataset: str, data_dir: str | Path,
                     checkpoints: dict[int, dict[str, Path]], metrics_path: str | Path,
                     out_dir: str | Path, *, progress: bool = True) -> dict:
    """Write metrics_path (JSON), out_dir/calibration.json, out_dir/per_seed.json and
    out_dir/plots/*.png. checkpoints: training seed -> model name -> model.pt."""
    from evaluate import plots

    if not checkpoints:
        raise ValueError("no training seeds to evaluate (params key 'train.seeds')")
    e = params.evaluate
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    device = choose_device(params.train.device)
    inp = eval_inputs(params, dataset, data_dir)
    test_idx, train, test, grids = inp.test_idx, inp.train, inp.test, inp.grids
    factors, ranges, pairs, refs = inp.factors, inp.ranges, inp.pairs, inp.refs
    log.info("evaluate %s: %d test minibatches (%s test identities per grid), %d train "
             "minibatches for calibration, seeds %s", dataset, len(test),
             "/".join(str(len(g)) for g in grids.values()), len(train), list(checkpoints))

    per_seed: dict[int, dict] = {}
    calibration: dict[str, dict] = {}
    first = None
    for seed, ckpts in checkpoints.items():
        models = load_models(ckpts, dataset, device, inp.data)
        report, codes, cal = {}, {}, {}
        for name, lm in models.items():
            log.info("evaluate %s: %s, seed %d", dataset, name, seed)
            report[name], entry, codes[name] = score_model(lm, train, test, grids, ranges, pairs,
                                                           refs, params, device)
            calibration[f"{name}/seed-{seed}"] = entry
            cal[name] = {f: FactorLatent(**d) for f, d in entry["factors"].items()}
        per_seed[seed] = report
        if first is None:
            first = (seed, models, codes, cal)

    mean, sd = mean_sd([per_seed[s] for s in checkpoints])
    result = {"n_seeds": len(checkpoints), **mean, "sd": sd, "reference": refs}

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / CALIBRATION, json.dumps(
        {"dataset": dataset, "image_size": test_idx.image_size, "channels": test_idx.channels,
         "models": calibration}, indent=2) + "\n")
    write_text(out_dir / PER_SEED, json.dumps(
        {"seeds": list(checkpoints), "per_seed": {str(s): r for s, r in per_seed.items()}},
        indent=2) + "\n")
    assert first is not None
    seed, models, codes, cal = first
    plots.write_all(out_dir / "plots", dataset=dataset, seed=seed, test=test, grids=grids,
                    codes=codes, models={n: m.model for n, m in models.items()},
                    calibration=cal, device=device, cfg=e, factors=factors,
                    live_dirs={n: Path(checkpoints[seed][n]).parent / "live" for n in MODELS},
                    intrinsic_kind=INTRINSIC,
                    scores={n: per_seed[seed][n]["equivariance"] for n in MODELS})
    write_text(metrics_path, json.dumps(result, indent=2, sort_keys=False) + "\n")
    log.info("evaluate %s: metrics -> %s, plots -> %s", dataset, metrics_path, out_dir / "plots")
    return result


def load_calibration(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no calibration yet (run `dcign evaluate` first)")
    return json.loads(path.read_text())
