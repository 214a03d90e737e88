"""The evaluate stage: the paper's claims as numbers (metrics JSON) and pictures (PNG).

For each model (DC-IGN and the entangled baseline) and each disentangled factor f:
- which latent is f's: DC-IGN's assigned one; for the baseline the paper's rule (sec. 4.1.1),
  the latent with the largest within-batch variance on f-batches, chosen on TRAIN batches;
- calibration: a line latent = slope * degrees + intercept fitted on train f-batches, so that a
  target angle can be turned into a latent value (stored for `dcign manipulate`);
- equivariance: |Pearson r| of that latent and f on test f-batches (paper Fig. 6);
- invariance: that latent's within-batch variance where f is fixed over where it varies;
- novel-view MSE: encode a test image, set the latent to the calibrated value of a target angle,
  decode, and compare with the ground truth that the render stage's own code renders for that
  identity at that angle (the paper's re-rendering claim, measured).
Plus test reconstruction MSE (latents = mu), MIG and DCI on the test codes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluate import metrics as M
from evaluate.data import Batches, decode, encode, load_batches
from pipeline.atomic import write_text
from pipeline.params import INTRINSIC, Params
from render.stage import ShardRenderer, render_params
from render.views import View
from train import checkpoint
from train.clamp import LatentAssignment
from train.data import SplitIndex
from train.fit import choose_device
from train.model import DCIGN

log = logging.getLogger(__name__)
MODELS = ("dcign", "baseline")
CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class FactorLatent:
    """Which latent carries a factor, and the line mapping degrees to it."""

    factor: str
    latent: int
    slope: float
    intercept: float
    lo: float
    hi: float

    def latent_value(self, degrees: float | np.ndarray) -> float | np.ndarray:
        return M.factor_to_latent(degrees, self.slope, self.intercept)


@dataclass
class LoadedModel:
    name: str
    model: DCIGN
    assignment: LatentAssignment
    ckpt_path: Path


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
    sub = train.of_kind(factor)
    mask = np.array([k == factor for k in train.kinds])
    codes = train_codes[mask]  # (n_f, B, D)
    j = find_latent(model_name, assignment, codes, factor)
    slope, intercept = M.linear_calibration(codes[..., j].ravel(), sub.factor(factor).ravel())
    return FactorLatent(factor, int(j), slope, intercept, float(rng[0]), float(rng[1]))


def novel_view_mse(predict: Callable[[np.ndarray, View, float], np.ndarray],
                   truth: Callable[[int, View], np.ndarray], inputs: list[tuple[np.ndarray, int,
                   View]], factor: str, targets: np.ndarray) -> float:
    """Mean per-pixel squared error, images in [0, 1], of re-rendering each input (image uint8
    (C, H, W), identity, its view) at each target value of `factor` (degrees).

    predict(image, view, target) -> float (C, H, W) in [0, 1]; truth(identity, view) -> uint8.
    """
    errors = []
    for image, identity, view in inputs:
        for t in targets:
            target_view = View(**{**view.__dict__, factor: float(t)})
            gt = truth(identity, target_view).astype(np.float32) / 255
            errors.append(float(np.mean((predict(image, view, float(t)) - gt) ** 2)))
    return float(np.mean(errors))


def novel_view_inputs(test: Batches, factor: str, n: int) -> list[tuple[np.ndarray, int, View]]:
    """Up to n inputs: the first image of test minibatches of kind `factor` (one identity
    each), cycling through their images if there are fewer batches than n."""
    sub = test.of_kind(factor)
    out = []
    for i in range(n):
        b, j = i % len(sub), (i // len(sub)) % sub.images.shape[1]
        f = dict(zip(sub.factor_names, map(float, sub.factors[b, j])))
        out.append((sub.images[b, j], int(sub.identity[b, j]), View(**f)))
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def check_shards_match_params(params: Params, dataset: str, index: SplitIndex) -> None:
    """Ground truth is rendered from params: refuse shards that params no longer describe."""
    import h5py

    with h5py.File(index.files[0], "r") as f:
        recorded = json.loads(f.attrs["params"])
    current = json.loads(json.dumps(render_params(params, dataset)))
    if recorded != current:
        raise ValueError(f"{index.files[0]}: shards were rendered with different render params "
                         f"than params.yaml has now; re-run `dcign render {dataset}`")


def evaluate_dataset(params: Params, dataset: str, data_dir: str | Path,
                     checkpoints: dict[str, Path], metrics_path: str | Path,
                     out_dir: str | Path, *, progress: bool = True) -> dict:
    """Write metrics_path (JSON), out_dir/calibration.json and out_dir/plots/*.png."""
    from evaluate import plots

    e = params.evaluate
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    train_idx, test_idx = SplitIndex.scan(data_dir / "train"), SplitIndex.scan(data_dir / "test")
    check_shards_match_params(params, dataset, test_idx)
    device = choose_device(params.train.device)
    per_kind = max(1, math.ceil(e.max_codes / train_idx.batch_size / len(train_idx.kinds)))
    train = load_batches(train_idx, per_kind)
    test = load_batches(test_idx, 10**9)  # the whole test split
    factors = train_idx.latent_factors
    ds = params.render.dataset(dataset)
    log.info("evaluate %s: %d test minibatches, %d train minibatches for calibration",
             dataset, len(test), len(train))

    models = {}
    for name in MODELS:
        model, ckpt = checkpoint.load_model(checkpoints[name], device=device)
        if ckpt["dataset"] != dataset:
            raise ValueError(f"{checkpoints[name]}: a {ckpt['dataset']} model, not {dataset}")
        models[name] = LoadedModel(name, model, checkpoint.assignment_of(ckpt), checkpoints[name])

    renderer = ShardRenderer(params, dataset)
    truth_cache: dict[tuple, np.ndarray] = {}

    def truth(identity: int, view: View) -> np.ndarray:
        key = (identity, view)
        if key not in truth_cache:
            truth_cache[key] = renderer.backend.render(renderer.mesh("test", identity), view)
        return truth_cache[key]

    report: dict[str, dict] = {}
    calibration: dict[str, dict] = {}
    codes: dict[str, np.ndarray] = {}
    for name, lm in models.items():
        log.info("evaluate %s: %s", dataset, name)
        tr_codes, te_codes = (encode(lm.model, b.images, device) for b in (train, test))
        codes[name] = te_codes
        recon = decode(lm.model, te_codes, device)
        test_mse = float(np.mean((recon - test.images.astype(np.float32) / 255) ** 2))
        out: dict = {"test_mse": test_mse, "equivariance": {}, "invariance": {},
                     "novel_view_mse": {}}
        calibration[name] = {"checkpoint": str(lm.ckpt_path), "factors": {}}
        ids = batch_ids(*test.identity.shape).ravel()
        for f in factors:
            fl = calibrate(name, lm.assignment, tr_codes, train, f, ds.factors[f])
            calibration[name]["factors"][f] = fl.__dict__
            sub_mask = np.array([k == f for k in test.kinds])
            z = te_codes[..., fl.latent]  # (n, B)
            out["equivariance"][f] = M.equivariance(z[sub_mask].ravel(),
                                                    test.factor(f)[sub_mask].ravel())
            varies = np.repeat(sub_mask[:, None], z.shape[1], axis=1).ravel()
            out["invariance"][f] = _finite(M.invariance_ratio(z.ravel(), ids, varies))

            def predict(image: np.ndarray, view: View, target: float, lm=lm, fl=fl) -> np.ndarray:
                code = encode(lm.model, image[None], device)[0]
                code[fl.latent] = fl.latent_value(target)
                return decode(lm.model, code[None], device)[0]

            targets = np.linspace(fl.lo, fl.hi, e.novel_view_targets)
            inputs = novel_view_inputs(test, f, e.novel_view_inputs)
            out["novel_view_mse"][f] = novel_view_mse(predict, truth, inputs, f, targets)
        flat_codes = te_codes.reshape(-1, te_codes.shape[-1])[: e.max_codes]
        flat_f = np.stack([test.factor(f).ravel() for f in factors], 1)[: e.max_codes]
        out["mig"] = M.mig(flat_codes, flat_f, n_bins=e.mig_bins)["mig"]
        dci = M.dci(tr_codes.reshape(-1, tr_codes.shape[-1]),
                    np.stack([train.factor(f).ravel() for f in factors], 1), flat_codes, flat_f,
                    n_bins=e.mig_bins, random_state=params.seed, n_estimators=e.dci_trees)
        out["dci"] = {k: dci[k] for k in ("disentanglement", "completeness", "informativeness")}
        report[name] = out

    # What re-rendering would score by copying the input unchanged: the bar a model must beat.
    copy = {}
    for f in factors:
        targets = np.linspace(*ds.factors[f], e.novel_view_targets)
        inputs = novel_view_inputs(test, f, e.novel_view_inputs)
        copy[f] = novel_view_mse(lambda img, v, t: img.astype(np.float32) / 255, truth, inputs,
                                 f, targets)
    report["reference"] = {"novel_view_copy_mse": copy}

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / CALIBRATION, json.dumps(
        {"dataset": dataset, "image_size": test_idx.image_size, "channels": test_idx.channels,
         "models": calibration}, indent=2) + "\n")
    cal = {name: {f: FactorLatent(**d) for f, d in c["factors"].items()}
           for name, c in calibration.items()}
    plots.write_all(out_dir / "plots", dataset=dataset, test=test, codes=codes,
                    models={n: m.model for n, m in models.items()}, calibration=cal,
                    truth=truth, device=device, cfg=e, factors=factors,
                    live_dirs={n: Path(checkpoints[n]).parent / "live" for n in MODELS},
                    intrinsic_kind=INTRINSIC)
    renderer.close()
    write_text(metrics_path, json.dumps(report, indent=2, sort_keys=False) + "\n")
    log.info("evaluate %s: metrics -> %s, plots -> %s", dataset, metrics_path, out_dir / "plots")
    return report


def load_calibration(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no calibration yet (run `dcign evaluate` first)")
    return json.loads(path.read_text())

