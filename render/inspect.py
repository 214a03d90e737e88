"""`dcign inspect`: what is in a shard (or a folder of shards), as text and as a contact sheet."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.atomic import atomic_path
from core.shards import ShardError, list_shards, open_shard


@dataclass
class Summary:
    files: list[Path] = field(default_factory=list)
    batches: int = 0
    images: int = 0
    kinds: Counter = field(default_factory=Counter)
    identities: set = field(default_factory=set)
    factor_lo: dict[str, float] = field(default_factory=dict)
    factor_hi: dict[str, float] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)


def shard_files(path: str | Path) -> list[Path]:
    """A shard file itself, or every shard under a split or dataset folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = list_shards(path) or sorted(path.glob("*/shard-*.h5"))
        if files:
            return files
        raise ShardError(f"{path}: no shard-*.h5 files here or in its subfolders")
    raise ShardError(f"{path}: no such file or folder")


def summarize(path: str | Path) -> Summary:
    s = Summary()
    for p in shard_files(path):
        with open_shard(p) as (f, info):
            s.files.append(p)
            s.attrs = info.attrs
            kind = f["kind"][:]
            factors = f["factors"][:]
            s.batches += info.num_batches
            s.images += info.num_batches * info.batch_size
            s.kinds.update(info.kind_names[k] for k in kind)
            s.identities.update((info.attrs["split"], int(i)) for i in np.unique(f["identity"][:]))
            for j, name in enumerate(info.factor_names):
                if info.num_batches:
                    lo, hi = float(factors[..., j].min()), float(factors[..., j].max())
                    s.factor_lo[name] = min(lo, s.factor_lo.get(name, lo))
                    s.factor_hi[name] = max(hi, s.factor_hi.get(name, hi))
    return s


def format_summary(s: Summary) -> str:
    a = s.attrs
    lines = [
        f"{len(s.files)} shard(s): {s.batches} minibatches, {s.images} images, "
        f"{len(s.identities)} identities",
        f"dataset {a.get('dataset')}  split(s) {sorted({i[0] for i in s.identities})}  "
        f"image {a.get('channels')}x{a.get('image_size')}x{a.get('image_size')}  "
        f"batch {a.get('batch_size')}  seed {a.get('seed')}  renderer {a.get('renderer')}",
        f"latent factors (z[0], z[1], ...): {', '.join(a.get('latent_factors', []))}",
        "minibatches per kind: " + ", ".join(f"{k} {n}" for k, n in sorted(s.kinds.items())),
        "factor ranges (degrees): " + ", ".join(
            f"{k} [{s.factor_lo[k]:.1f}, {s.factor_hi[k]:.1f}]" for k in s.factor_lo),
    ]
    return "\n".join(lines)


def contact_sheet(path: str | Path, out: str | Path, *, rows: int = 8, cols: int = 10) -> Path:
    """Write a PNG: one row per minibatch (up to `rows`, covering every kind first), the first
    `cols` images of each, labelled with the batch's kind and identity."""
    picked: list[tuple[str, np.ndarray, str]] = []
    seen: Counter = Counter()
    candidates = []
    for p in shard_files(path):
        with open_shard(p) as (f, info):
            kinds = f["kind"][:]
            for i, k in enumerate(kinds):
                candidates.append((seen[k], p, i, info.kind_names[k]))
                seen[k] += 1
    # Round-robin over kinds so every kind shows up before any repeats.
    candidates.sort(key=lambda c: c[0])
    for _, p, i, kind in candidates[:rows]:
        with open_shard(p) as (f, _info):
            images = f["images"][i, :cols]
            ident = f["identity"][i]
        n_ids = len(set(ident.tolist()))
        label = f"{kind}  id {ident[0]}" if n_ids == 1 else f"{kind}  {n_ids} ids"
        picked.append((label, images, kind))
    if not picked:
        raise ShardError(f"{path}: shards hold no minibatches")
    _, first, _ = picked[0]
    c, h, w = first.shape[1:]
    label_w, pad = 150, 2
    sheet = Image.new("RGB", (label_w + cols * (w + pad), len(picked) * (h + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images, _kind) in enumerate(picked):
        y = r * (h + pad)
        draw.text((4, y + h // 2 - 6), label, fill="black")
        for j, im in enumerate(images):
            arr = im[0] if c == 1 else im.transpose(1, 2, 0)
            sheet.paste(Image.fromarray(arr).convert("RGB"), (label_w + j * (w + pad), y))
    out = Path(out)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
