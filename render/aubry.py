"""Import the Aubry et al. (CVPR 2014) "rendered_chairs" images into dcign shards.

The release (rendered_chairs.tar, 86,366 images) is a folder
ROOT/<chair>/renders/image_XXX_pYYY_tZZZ_rRRR.png: p = elevation and t = azimuth in whole
degrees, XXX = view number, r = 096 throughout. It holds 1393 chairs x 31 azimuths x elevations
20 and 30, 600x600 RGB on a white background; the paper used 1357 of them, grayscale and resized
to 150x150. `import_chairs` writes the same shards as `dcign render chairs` (core.shards), with
these choices:

- Factors: azimuth and elevation are the file-name values, stored exactly; azimuth is moved by
  a multiple of 360 into the params range when it lies outside (never with the default
  [0, 360]). Views outside the params ranges are skipped. The light is fixed in the release and
  unknown: light_azimuth is stored as 0.0, the root attribute ``unknown_factors`` says so, and
  it may not be a disentangled factor.
- Background: ``render.chairs.aubry.background: black`` (default) sets every pixel whose R, G and
  B are all >= ``white_threshold`` to 0, at full resolution before resizing, so the images look
  like our renders (black background). A global threshold rather than a flood fill from the
  borders: chairs have many see-through gaps (slatted backs, between legs and stretchers) that
  are enclosed by the chair and that a flood fill would leave white; the cost is that pure-white
  chair parts turn black too. ``keep`` leaves the white background.
- Pixels: core.images.load_image, the conversion `dcign manipulate` applies to a user's
  image too: alpha composited over white, a non-square image padded with white to a square,
  then Rec. 709 luma of the encoded values (as render.shading does) or RGB, resized with
  Lanczos in float32 and rounded to uint8.
- Split: a chair is in test when sha256(f"{seed}:{folder name}") falls below
  ``render.chairs.folder.test_fraction`` (the rule of render.mesh_folder.MeshFolderChairs), so a
  chair's split never depends on the other chairs. Identity i of a split is its i-th chair in
  name order, capped at ``render.chairs.identities``; the root attribute ``identity_names`` (a
  JSON list) maps ids back to folder names.
- Batches (kinds and counts from params, order from render.batches.kind_sequence): a batch of a
  view factor (azimuth, or elevation if disentangled) is one chair at one value of the other view
  factor, with batch_size distinct values of its own factor drawn without replacement, among the
  (chair, other value) groups that have that many views (an error if none has). An intrinsic
  batch holds batch_size distinct chairs; disentangled view factors are drawn once and every
  chair shows the view nearest to them (the same view whenever chairs share a view grid, as in
  the release), while other_factors (elevation, by default) are drawn per image.

Every draw comes from core.seeds.stream(seed, "aubry", split, batch index), so the same files
and params give byte-identical images. Shards are written atomically and a re-run skips those
whose fingerprint (params, schema, batch range, names and sizes of the split's source files)
matches.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from core.config import ParamsError
from core.images import load_image
from core.params import ChairsConfig, Params, fingerprint, params_dict
from core.seeds import stream
from core.shards import SCHEMA_VERSION
from core.vocab import FACTORS, GRID_SPLITS, INTRINSIC, SPLITS, VIEW_FACTORS
from render.batches import kind_ordinals, kind_sequence
from render.mesh_folder import split_of
from render.stage import RenderSummary, ShardTask, shard_loop, shard_tasks, write_task

log = logging.getLogger(__name__)

DATASET = "chairs"
RENDERER = "aubry-import"
PATTERN = "image_XXX_pYYY_tZZZ_rRRR.png"
_NAME = re.compile(r"image_(\d+)_p(-?\d+)_t(-?\d+)_r(\d+)\.png")
UNKNOWN_FACTORS = ("light_azimuth",)
IMAGE_CACHE = 2048  # converted images kept per import (an image is reused by several batches)


@dataclass(frozen=True)
class AubryView:
    """One image: its view in degrees, its file and the file's size in bytes."""

    azimuth: float
    elevation: float
    path: Path
    size: int

    def value(self, factor: str) -> float:
        return self.azimuth if factor == "azimuth" else self.elevation


@dataclass(frozen=True)
class AubryChair:
    """A chair folder's name and its views, sorted by (elevation, azimuth)."""

    name: str
    views: tuple[AubryView, ...]


@dataclass(frozen=True)
class AubryIndex:
    """Every chair of a rendered_chairs folder, sorted by name."""

    root: Path
    chairs: tuple[AubryChair, ...]

    @property
    def num_images(self) -> int:
        return sum(len(c.views) for c in self.chairs)


def _layout(root: Path) -> str:
    return f"expected {root}/<chair>/renders/{PATTERN}, p = elevation, t = azimuth in degrees"


def scan_aubry(path: str | Path) -> AubryIndex:
    """Index a rendered_chairs folder; every file under <chair>/renders/ must match PATTERN.

    Files directly in the root (the release's all_chair_names.mat) and names starting with "."
    are ignored. Raises FileNotFoundError / NotADirectoryError for a missing root, ValueError for
    a chair folder without renders/, a file that does not match, or two files of one view."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder ({_layout(root)})")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder ({_layout(root)})")
    chairs, bad = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        renders = folder / "renders"
        if not renders.is_dir():
            raise ValueError(f"{folder}: no renders/ folder ({_layout(root)})")
        views: dict[tuple[float, float], AubryView] = {}
        for entry in sorted(os.scandir(renders), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            m = _NAME.fullmatch(entry.name)
            if m is None or not entry.is_file():
                bad.append(entry.path)
                continue
            view = AubryView(azimuth=float(m[3]), elevation=float(m[2]), path=Path(entry.path),
                             size=entry.stat().st_size)
            key = (view.elevation, view.azimuth)
            if key in views:
                raise ValueError(f"{view.path}: the same view (p = {m[2]}, t = {m[3]}) as "
                                 f"{views[key].path.name}; expected one image per view")
            views[key] = view
        if not views and not bad:
            raise ValueError(f"{renders}: no images ({_layout(root)})")
        chairs.append(AubryChair(folder.name, tuple(views[k] for k in sorted(views))))
    if bad:
        more = f" (and {len(bad) - 1} more such files)" if len(bad) > 1 else ""
        raise ValueError(f"{bad[0]}: does not match {PATTERN}{more}; {_layout(root)}")
    if not chairs:
        raise ValueError(f"{root}: no chair folders ({_layout(root)})")
    return AubryIndex(root, tuple(chairs))


def split_chairs(index: AubryIndex, seed: int, test_fraction: float
                 ) -> dict[str, tuple[AubryChair, ...]]:
    """Every chair of each split, in name order (a hash of seed and name picks the split)."""
    out: dict[str, list[AubryChair]] = {s: [] for s in SPLITS}
    for chair in index.chairs:
        out[split_of(seed, chair.name, test_fraction)].append(chair)
    return {s: tuple(c) for s, c in out.items()}


# ----------------------------------------------------------------------------- pixels


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class ImportBatch:
    """One planned minibatch: kind, identity int64 (B,), factors float32 (B, len(FACTORS)) in
    degrees (FACTORS order) and the file of each image."""

    kind: str
    identity: np.ndarray
    factors: np.ndarray
    paths: tuple[Path, ...]


def _wrap(value: float, lo: float, hi: float) -> float | None:
    """value, or value -+ 360, inside [lo, hi] (the value itself first); None if none is."""
    for v in (value, value - 360.0, value + 360.0):
        if lo <= v <= hi:
            return v
    return None


def _views_in_range(chair: AubryChair, ds: ChairsConfig) -> tuple[AubryView, ...]:
    az_lo, az_hi = ds.factor_range("azimuth")
    el_lo, el_hi = ds.factor_range("elevation")
    out = []
    for v in chair.views:
        az = _wrap(v.azimuth, az_lo, az_hi)
        if az is not None and el_lo <= v.elevation <= el_hi:
            out.append(AubryView(az, v.elevation, v.path, v.size))
    return tuple(out)


def _distance(factor: str, a: float, b: float) -> float:
    d = abs(a - b)
    return min(d % 360.0, 360.0 - d % 360.0) if factor == "azimuth" else d


class SplitPlanner:
    """The chairs of one split that the shards use (identity i = chairs[i]) with their views
    inside the params ranges, and seeded minibatch plans drawn from them."""

    def __init__(self, chairs: Sequence[AubryChair], ds: ChairsConfig, *, seed: int,
                 split: str, batch_size: int) -> None:
        self.ds, self.seed, self.split, self.batch_size = ds, seed, split, batch_size
        in_range = [(c, _views_in_range(c, ds)) for c in chairs]
        dropped = sum(1 for _, v in in_range if not v)
        if dropped:
            log.warning("%d %s chairs have no view inside the params ranges; skipped",
                        dropped, split)
        kept = [(c, v) for c, v in in_range if v][: ds.identities.get(split)]
        if len(kept) < batch_size:
            raise ValueError(
                f"the {split!r} split has {len(kept)} usable chairs, fewer than "
                f"render.batch_size={batch_size} that an intrinsic batch needs (distinct chairs); "
                f"add chairs, lower render.batch_size or change "
                f"render.chairs.folder.test_fraction")
        self.chairs = tuple(c for c, _ in kept)
        self.views = tuple(v for _, v in kept)
        self._groups = {k: self._group(k) for k in ds.factors if k in VIEW_FACTORS}
        self._values = {f: sorted({v.value(f) for vs in self.views for v in vs})
                        for f in VIEW_FACTORS}
        self._grids = ({k: self._grid(k) for k in self._groups} if split in GRID_SPLITS
                       else {})

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.chairs]

    def digest(self) -> str:
        """What the split's images are made from: folder and file names and file sizes."""
        h = hashlib.sha256()
        for chair, views in zip(self.chairs, self.views):
            for v in views:
                h.update(f"{chair.name}/{v.path.name}:{v.size}\n".encode())
        return h.hexdigest()[:16]

    def _group(self, kind: str) -> list[tuple[int, tuple[AubryView, ...]]]:
        """(identity, views) per chair and value of the other view factor, keeping the groups
        with at least batch_size views (each a distinct value of `kind`)."""
        other = VIEW_FACTORS[1 - VIEW_FACTORS.index(kind)]
        groups, most = [], 0
        for i, views in enumerate(self.views):
            for value in sorted({v.value(other) for v in views}):
                g = tuple(v for v in views if v.value(other) == value)
                most = max(most, len(g))
                if len(g) >= self.batch_size:
                    groups.append((i, g))
        if not groups:
            raise ValueError(
                f"no {self.split!r} chair has render.batch_size={self.batch_size} distinct "
                f"{kind} values at one {other} (at most {most}); a {kind} batch needs that many; "
                f"lower render.batch_size or move {kind} to render.chairs.other_factors")
        return groups

    def _grid(self, kind: str) -> tuple[tuple[int, ...], list[tuple[AubryView, ...]]]:
        """A grid split's shared views of `kind`: (chairs that have all of them, their views in
        grid order). The other view factor is held at the value most chairs have (nearest the
        middle of its range on a tie); the grid is batch_size of the values of `kind` that all
        those chairs share, evenly spread by rank."""
        other = VIEW_FACTORS[1 - VIEW_FACTORS.index(kind)]
        groups = self._groups[kind]
        mid = 0.5 * sum(self.ds.factor_range(other))
        held = Counter(g[0].value(other) for _, g in groups)
        value = min(held, key=lambda v: (-held[v], abs(v - mid), v))
        at = [(i, {v.value(kind): v for v in g}) for i, g in groups if g[0].value(other) == value]
        common = sorted(set.intersection(*(set(by) for _, by in at)))
        if len(common) < self.batch_size:
            raise ValueError(
                f"the {self.split!r} chairs share only {len(common)} {kind} values at {other} "
                f"{value:g}, fewer than render.batch_size={self.batch_size}: a test {kind} batch "
                f"must show every chair at the same views; lower render.batch_size")
        grid = [common[(j * len(common)) // self.batch_size] for j in range(self.batch_size)]
        return tuple(i for i, _ in at), [tuple(by[g] for g in grid) for _, by in at]

    def grid_plan(self, kind: str, ordinal: int) -> ImportBatch:
        """The `ordinal`-th `kind` batch of a grid split: chair `ordinal` (mod the grid's
        chairs) at the shared views."""
        chairs, views = self._grids[kind]
        n = ordinal % len(chairs)
        return self._batch(kind, np.full(self.batch_size, chairs[n]), list(views[n]))

    def _batch(self, kind: str, ids: np.ndarray, views: list[AubryView]) -> ImportBatch:
        factors = np.zeros((self.batch_size, len(FACTORS)), dtype=np.float32)  # light: 0.0
        for j, name in enumerate(FACTORS):
            if name in VIEW_FACTORS:
                factors[:, j] = [v.value(name) for v in views]
        return ImportBatch(kind, ids.astype(np.int64), factors, tuple(v.path for v in views))

    def plan(self, kind: str, rng: np.random.Generator) -> ImportBatch:
        if kind == INTRINSIC:
            ids = rng.choice(len(self.chairs), size=self.batch_size, replace=False)
            views = self._intrinsic_views(ids, rng)
        else:
            ident, group = self._groups[kind][int(rng.integers(len(self._groups[kind])))]
            pick = rng.choice(len(group), size=self.batch_size, replace=False)
            ids = np.full(self.batch_size, ident)
            views = [group[j] for j in pick]
        return self._batch(kind, ids, views)

    def _intrinsic_views(self, ids: np.ndarray, rng: np.random.Generator) -> list[AubryView]:
        # Disentangled view factors are held: one target, each chair's nearest view. Others
        # belong to the intrinsic code and are drawn per image (render.batches' rule).
        held = [f for f in VIEW_FACTORS if f in self.ds.factors]
        target = {f: self._values[f][int(rng.integers(len(self._values[f])))] for f in held}
        out = []
        for i in ids:
            cand = self.views[int(i)]
            for f in VIEW_FACTORS:
                if f not in held:
                    values = sorted({v.value(f) for v in cand})
                    value = values[int(rng.integers(len(values)))]
                    cand = tuple(v for v in cand if v.value(f) == value)
            out.append(min(cand, key=lambda v: sum(_distance(f, v.value(f), target[f])
                                                   for f in held)))
        return out

    def plans(self, start: int, stop: int) -> list[ImportBatch]:
        """Plans of minibatches [start, stop) of the split."""
        kinds = kind_sequence(self.ds, self.seed, DATASET, self.split)
        ordinals = kind_ordinals(kinds)
        return [self.grid_plan(kinds[i], ordinals[i]) if kinds[i] in self._grids
                else self.plan(kinds[i], stream(self.seed, "aubry", self.split, i))
                for i in range(start, stop)]


# ----------------------------------------------------------------------------- the stage


def import_params(params: Params) -> dict:
    """The part of params that determines the imported shards (recorded in each shard)."""
    r, ds = params.render, params.render.chairs
    return {
        "seed": params.seed,
        "source": RENDERER,
        "render": {k: getattr(r, k) for k in ("image_size", "channels", "batch_size",
                                              "batches_per_shard")},
        DATASET: {
            "factors": params_dict(ds.factors), "other_factors": params_dict(ds.other_factors),
            "identities": params_dict(ds.identities), "batches": params_dict(ds.batches),
            "test_fraction": ds.folder.test_fraction, "aubry": params_dict(ds.aubry),
        },
    }


def _check_params(ds: ChairsConfig) -> None:
    for name in UNKNOWN_FACTORS:
        if name in ds.factors:
            raise ParamsError(f"render.chairs.factors.{name}",
                              "the Aubry renders share one fixed, unknown light, so it cannot be "
                              "disentangled; move it to render.chairs.other_factors")


def _software() -> dict[str, str]:
    out = {}
    for pkg in ("dcign", "numpy", "h5py", "pillow"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def import_chairs(params: Params, src: str | Path, out_dir: str | Path, *,
                  progress: bool = True) -> RenderSummary:
    """Convert the rendered_chairs folder `src` into out_dir/{train,test}/shard-NNNNN.h5.

    Uses params.render (image_size, channels, batch_size, batches_per_shard), params.seed and
    params.render.chairs (factors, other_factors, identities, batches, folder.test_fraction,
    aubry). Complete shards with a matching fingerprint are skipped, others (re)written,
    shards beyond the plan removed."""
    t0 = time.perf_counter()
    ds, r = params.render.chairs, params.render
    _check_params(ds)
    out_dir = Path(out_dir)
    chairs = split_chairs(scan_aubry(src), params.seed, ds.folder.test_fraction)
    planners = {s: SplitPlanner(chairs[s], ds, seed=params.seed, split=s,
                                batch_size=r.batch_size) for s in SPLITS}
    record = import_params(params)
    digests = {s: planners[s].digest() for s in SPLITS}
    log.info("import-chairs %s: %s chairs", src, "/".join(str(len(planners[s].chairs))
                                                          for s in SPLITS))
    a = ds.aubry
    load = lru_cache(maxsize=IMAGE_CACHE)(partial(
        load_image, image_size=r.image_size, channels=r.channels, background=a.background,
        white_threshold=a.white_threshold))

    def fingerprint_of(t: ShardTask) -> str:
        return fingerprint({"params": record, "schema": SCHEMA_VERSION, "task": t.__dict__,
                            "source": digests[t.split]})

    def produce(todo: list[ShardTask], on_images: Callable[[int], None]) -> None:
        software = _software()
        for t in todo:
            planner = planners[t.split]
            write_task(params, DATASET, t, out_dir, planner.plans(t.start, t.stop),
                       lambda plan: np.stack([load(path) for path in plan.paths]),
                       record=record, renderer=RENDERER, software=software,
                       fingerprint=fingerprint_of(t), on_batch=on_images, extra_attrs={
                           "identity_names": json.dumps(planner.names),
                           "unknown_factors": json.dumps(list(UNKNOWN_FACTORS))})

    return shard_loop(params, DATASET, out_dir, shard_tasks(params, DATASET), fingerprint_of,
                      produce, prune=True, progress=progress, label="import-chairs", t0=t0)


__all__ = [
    "PATTERN", "AubryChair", "AubryIndex", "AubryView", "ImportBatch", "SplitPlanner",
    "import_chairs", "import_params", "load_image", "scan_aubry", "split_chairs",
]
