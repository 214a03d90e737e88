"""From params to a dataset's identity source (imports each source lazily)."""

from __future__ import annotations

from core.config import ParamsError
from core.params import ChairsConfig, FacesConfig, Params
from render.sources import IdentitySource


def make_source(params: Params, dataset: str) -> IdentitySource:
    """The identity source params.render.<dataset> asks for."""
    ds = params.render.dataset(dataset)
    if isinstance(ds, FacesConfig):
        if ds.source == "anny":
            from render.faces import AnnyHeads

            a = ds.anny
            return AnnyHeads(params.seed, dataset, shape_std=a.shape_std, macro_std=a.macro_std,
                             albedo_variation=a.albedo_variation)
        from render.bfm import BaselFaces

        return BaselFaces(params.seed, dataset, path=ds.bfm.path, components=ds.bfm.components)
    if isinstance(ds, ChairsConfig):
        if ds.source == "parametric":
            from render.chairs import ParametricChairs

            return ParametricChairs(params.seed, dataset)
        from render.mesh_folder import MeshFolderChairs

        f = ds.folder
        return MeshFolderChairs(f.path, seed=params.seed, up_axis=f.up_axis,
                                front_axis=f.front_axis, test_fraction=f.test_fraction)
    raise ParamsError(f"render.{dataset}", "no identity source for this dataset")


def num_identities(params: Params, dataset: str, source: IdentitySource, split: str) -> int:
    """Identities of a split: the params count, capped by what a finite source holds."""
    wanted = params.render.dataset(dataset).identities.get(split)
    available = source.num_identities(split)
    n = wanted if available is None else min(wanted, available)
    if n < params.render.batch_size:
        raise ParamsError(
            f"render.{dataset}.identities.{split}",
            f"only {n} identities available, fewer than render.batch_size="
            f"{params.render.batch_size} (an intrinsic batch needs that many distinct ones)",
        )
    return n
