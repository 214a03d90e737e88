"""Evaluation's forward passes, contiguous vs channels-last: images/s of encode and decode.

    python -m bench.eval_layout [--images 1000] [--rounds 2] [--out bench/RESULTS.md]

`evaluate.data.encode` / `decode` (what the evaluate stage spends most of its time in) on the
default faces model (params.yaml; fresh weights: the speed does not depend on them), one
layout after the other for --rounds rounds, with torch's threads as set (OMP_NUM_THREADS).
Also prints the largest difference between the two layouts' outputs: the layouts sum in other
orders, so codes and images differ in the last bits, not more.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import numpy as np
import torch

from bench import publish
from bench.cpu import model_configs
from bench.render import machine
from bench.train import commit
from evaluate.data import decode, encode
from train.model import DCIGN

LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    cfg = model_configs()["default"]
    torch.manual_seed(0)
    base = DCIGN(cfg).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (a.images, cfg.channels, cfg.image_size, cfg.image_size),
                          dtype=np.uint8)
    codes = rng.normal(size=(a.images, cfg.latent_dim)).astype(np.float32)
    cpu = torch.device("cpu")
    models = {k: DCIGN(cfg).eval().to(memory_format=f) for k, f in LAYOUTS.items()}
    for m in models.values():
        m.load_state_dict(base.state_dict())
    rates: dict[str, dict[str, list[float]]] = {k: {"encode": [], "decode": []} for k in LAYOUTS}
    outs = {}
    for _ in range(a.rounds):
        for k, m in models.items():
            t0 = time.perf_counter()
            z = encode(m, images, cpu)
            t1 = time.perf_counter()
            x = decode(m, codes, cpu)
            t2 = time.perf_counter()
            rates[k]["encode"].append(a.images / (t1 - t0))
            rates[k]["decode"].append(a.images / (t2 - t1))
            outs[k] = (z, x)
    dz = float(np.abs(outs["contiguous"][0] - outs["channels-last"][0]).max())
    dx = float(np.abs(outs["contiguous"][1] - outs["channels-last"][1]).max())
    med = {k: {p: statistics.median(v) for p, v in r.items()} for k, r in rates.items()}
    lines = [f"### evaluate layout: encode and decode, contiguous vs channels-last "
             f"({date.today()}, commit {commit()})", "",
             f"Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} "
             f"thread(s)",
             f"Command: `python -m bench.eval_layout --images {a.images} --rounds {a.rounds}`", "",
             f"Model: the default faces model ({cfg.image_size} px, latent {cfg.latent_dim}), "
             f"{a.images} images and codes, chunks of 200 (as the evaluate stage).", "",
             "| layout | encode img/s | decode img/s | every round (encode / decode) |",
             "|---|---|---|---|"]
    for k in LAYOUTS:
        every = ", ".join(f"{e:.0f} / {d:.0f}" for e, d in zip(rates[k]["encode"],
                                                               rates[k]["decode"], strict=True))
        lines.append(f"| {k} | {med[k]['encode']:.0f} | {med[k]['decode']:.0f} | {every} |")
    c, cl = med["contiguous"], med["channels-last"]
    lines += ["", f"channels-last / contiguous: encode {cl['encode'] / c['encode']:.2f}x, "
              f"decode {cl['decode'] / c['decode']:.2f}x; largest difference: codes {dz:.2g}, "
              f"images {dx:.2g}"]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
