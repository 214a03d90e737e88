"""`dcign`: the command line of every stage.

Commands are thin: read params (validated up front, with --set overrides), take every path from
arguments, call one library function. Errors print one clear line and exit non-zero.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from core.atomic import machine_error
from core.config import ParamsError
from core.params import Params, load_params
from core.progress import configure_logging
from core.vocab import DATASETS, MODELS, model_dir

log = logging.getLogger("dcign")
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
# Errors a user can cause with bad input; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ParamsError, FileNotFoundError, ValueError,
                                                RuntimeError, OSError, MemoryError)


def setup_logging(verbose: bool) -> None:
    configure_logging(logging.DEBUG if verbose else logging.INFO)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a user error into one line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.exceptions.Exit:  # a deliberate exit status (gate): not an error message
            raise
        except OSError as e:
            # The machine's write faults (disk full, read-only) in one worded line naming the
            # path; other OS errors (a missing input) already name their file.
            if e.filename is not None and e.errno in WRITE_ERRNOS:
                e = machine_error(Path(e.filename), e)
            raise click.ClickException(str(e)) from None
        except USER_ERRORS as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def params_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                      help="Override a params key (dotted, value parsed as YAML); repeatable.")(fn)
    fn = click.option("--params", "params_path", default="params.yaml", show_default=True,
                      type=click.Path(dir_okay=False), help="The params file.")(fn)
    return fn


def get_params(params_path: str, overrides: tuple[str, ...]) -> Params:
    return load_params(params_path, overrides)


dataset_arg = click.argument("dataset", type=click.Choice(DATASETS))
progress_option = click.option(
    "--progress/--no-progress", default=True, show_default=True,
    help="Live progress bar, or (--no-progress) a log line per 10% of the work.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="dcign")
def main(verbose: bool) -> None:
    """DC-IGN pipeline: render -> train -> evaluate (Kulkarni et al., NIPS 2015)."""
    setup_logging(verbose)


@main.command("params")
@params_options
@click.option("--write", "write_path", type=click.Path(dir_okay=False), default=None,
              help="Write the resolved params here (atomically) instead of printing them.")
@user_errors
def params_cmd(params_path: str, overrides: tuple[str, ...], write_path: str | None) -> None:
    """Validate params (with --set overrides) and print or write the resolved YAML."""
    import yaml

    from core.atomic import write_text
    from core.params import params_dict

    text = yaml.safe_dump(params_dict(get_params(params_path, overrides)), sort_keys=False)
    if write_path:
        write_text(write_path, text)
    else:
        click.echo(text, nl=False)


@main.command()
@dataset_arg
@params_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default data/DATASET); shards go to OUT/{train,test}/.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Processes rendering shards in parallel.")
@click.option("--shard-index", type=click.IntRange(min=0), default=None,
              help="Render only shards i with i % --num-shards == this (cluster array jobs).")
@click.option("--num-shards", type=click.IntRange(min=1), default=None)
@progress_option
@user_errors
def render(dataset: str, params_path: str, overrides: tuple[str, ...], out_dir: str | None,
           workers: int, shard_index: int | None, num_shards: int | None, progress: bool) -> None:
    """Render DATASET's transformation-controlled minibatches into HDF5 shards."""
    from render.stage import make_shards

    params = get_params(params_path, overrides)
    if (shard_index is None) != (num_shards is None):
        raise click.UsageError("--shard-index and --num-shards go together")
    out = Path(out_dir or f"data/{dataset}")
    s = make_shards(params, dataset, out, workers=workers, shard_index=shard_index,
                    num_shards=num_shards, progress=progress)
    rate = s.images / s.seconds if s.seconds > 0 else 0.0
    log.info("render %s: %d shard(s) written, %d already current, %d images in %.1f s "
             "(%.0f images/s) -> %s", dataset, s.rendered, s.skipped, s.images, s.seconds, rate,
             s.out_dir)


@main.command("import-chairs")
@click.argument("src", type=click.Path())
@params_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="data/chairs",
              show_default=True, help="Shards go to OUT/{train,test}/.")
@progress_option
@user_errors
def import_chairs(src: str, params_path: str, overrides: tuple[str, ...], out_dir: str,
                  progress: bool) -> None:
    """Import the Aubry et al. rendered_chairs images (SRC/<chair>/renders/*.png) as shards."""
    from render.aubry import import_chairs as run

    s = run(get_params(params_path, overrides), src, out_dir, progress=progress)
    log.info("import-chairs: %d shard(s) written, %d already current, %d images in %.1f s -> %s",
             s.rendered, s.skipped, s.images, s.seconds, s.out_dir)


@main.command()
@click.argument("path", type=click.Path())
@click.option("--out", "out_png", type=click.Path(dir_okay=False), default=None,
              help="Contact sheet PNG (default: inspect-<name>.png in the current folder).")
@click.option("--rows", default=8, show_default=True, type=click.IntRange(1, 1000),
              help="Minibatches shown, one per row.")
@click.option("--cols", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Images shown per minibatch.")
@user_errors
def inspect(path: str, out_png: str | None, rows: int, cols: int) -> None:
    """Summarise a shard (or a folder of shards) and write a contact sheet."""
    from render.inspect import contact_sheet, format_summary, summarize

    click.echo(format_summary(summarize(path)))
    p = Path(path)
    name = p.stem if p.is_file() else "-".join(p.resolve().parts[-2:])
    out = contact_sheet(path, out_png or f"inspect-{name}.png", rows=rows, cols=cols)
    click.echo(f"contact sheet: {out}")


@main.command()
@dataset_arg
@params_options
@click.option("--model", "model_kinds", type=click.Choice(MODELS), required=True, multiple=True,
              help="dcign = clamped training (the paper); baseline = the same net as a plain VAE."
                   " Repeat to train several.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Shards folder with train/ and test/ (default data/DATASET).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None,
              help="Training seed (default: the first of train.seeds).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder of a single --model (default models/DATASET-MODEL/seed-SEED).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Models trained at once, one process each, sharing the cores (train/lanes.py).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@progress_option
@user_errors
def train(dataset: str, params_path: str, overrides: tuple[str, ...],
          model_kinds: tuple[str, ...], seed: int | None, data_dir: str | None,
          out_dir: str | None, jobs: int, resume: bool, progress: bool) -> None:
    """Fit DC-IGN and/or the entangled baseline on DATASET's shards."""
    from train.lanes import Lane, fit_lanes

    kinds = list(dict.fromkeys(model_kinds))  # each model once, in the order given
    if out_dir is not None and len(kinds) > 1:
        raise click.UsageError("--out names one model's folder; give a single --model with it")
    params = get_params(params_path, overrides)
    seed = params.train.seeds[0] if seed is None else seed
    lanes = [Lane(k, seed, Path(out_dir or model_dir("models", dataset, k, seed))) for k in kinds]
    fit_lanes(params, dataset, Path(data_dir or f"data/{dataset}"), lanes, jobs=jobs,
              resume=resume, progress=progress)


@main.command()
@dataset_arg
@params_options
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Shards folder with train/ and test/ (default data/DATASET).")
@click.option("--models", "models_dir", type=click.Path(file_okay=False), default="models",
              show_default=True,
              help="Holds DATASET-MODEL/seed-SEED/model.pt for each seed of train.seeds.")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False), default=None,
              help="Metrics JSON (default metrics/DATASET.json).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Calibration and plots folder (default eval/DATASET).")
@user_errors
def evaluate(dataset: str, params_path: str, overrides: tuple[str, ...], data_dir: str | None,
             models_dir: str, metrics_path: str | None, out_dir: str | None) -> None:
    """Score DC-IGN and the baseline on DATASET's test shards; write metrics and plots."""
    from evaluate.stage import evaluate_dataset

    params = get_params(params_path, overrides)
    ckpts = {s: {m: model_dir(models_dir, dataset, m, s) / "model.pt" for m in MODELS}
             for s in params.train.seeds}
    evaluate_dataset(params, dataset, Path(data_dir or f"data/{dataset}"), ckpts,
                     Path(metrics_path or f"metrics/{dataset}.json"),
                     Path(out_dir or f"eval/{dataset}"))


@main.command()
@click.option("--checkpoint", "ckpt", type=click.Path(dir_okay=False), required=True,
              help="A trained model.pt.")
@click.option("--image", "image", type=click.Path(dir_okay=False), required=True,
              help="Any image file; converted as the training data was.")
@click.option("--factor", required=True, help="Which factor to change, e.g. azimuth.")
@click.option("--values", required=True, help="Comma-separated degrees, e.g. -60,-30,0,30,60.")
@click.option("--out", "out_png", type=click.Path(dir_okay=False), required=True)
@click.option("--calibration", type=click.Path(dir_okay=False), default=None,
              help="From `dcign evaluate` (default eval/DATASET/calibration.json).")
@user_errors
def manipulate(ckpt: str, image: str, factor: str, values: str, out_png: str,
               calibration: str | None) -> None:
    """Re-render a single image at new factor values with a trained decoder."""
    from evaluate.manipulate import manipulate as run
    from evaluate.manipulate import parse_values

    out = run(ckpt, image, factor, parse_values(values), out_png, calibration)
    click.echo(f"wrote {out}")


@main.command()
@click.option("--metrics", "metrics_dir", type=click.Path(file_okay=False), default="metrics",
              show_default=True)
@click.option("--md", is_flag=True, help="Markdown, for a pull request.")
@user_errors
def report(metrics_dir: str, md: bool) -> None:
    """Print every dataset's metrics, DC-IGN next to the baseline."""
    from evaluate.report import format_table, load_all, rows

    click.echo(format_table(rows(load_all(metrics_dir)), markdown=md))


@main.command()
@click.option("--base", required=True,
              help="Base metrics: a git revision (reads its metrics/ folder) or a folder.")
@click.option("--new", default="metrics", show_default=True,
              help="New metrics: a folder or a git revision.")
@click.option("--metrics-dir", default="metrics", show_default=True,
              help="Where metrics live inside a git revision.")
@click.option("--params", "params_path", default="params.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="Holds gate.tolerance.")
@click.option("--out", "out_md", type=click.Path(dir_okay=False), default=None,
              help="Also write the Markdown report here (e.g. for a PR comment).")
@user_errors
def gate(base: str, new: str, metrics_dir: str, params_path: str, out_md: str | None) -> None:
    """Compare metrics with a base and exit 1 if any gated metric regressed."""
    from core.atomic import write_text
    from evaluate.gate import compare, markdown, read_metrics

    tolerance = load_params(params_path).gate.tolerance
    rows = compare(read_metrics(base, metrics_dir), read_metrics(new, metrics_dir), tolerance)
    text = markdown(rows, base, new)
    click.echo(text)
    if out_md:
        write_text(out_md, text + "\n")
    if any(r.failed for r in rows):
        raise click.exceptions.Exit(1)


if __name__ == "__main__":
    main()
