"""Reader: any volume ``ctinpaint.io.open_volume`` opens, lazily, as napari layers.

A Zarr group with several arrays (``ctinpaint phantom`` output, ``ctinpaint
inpaint`` output) becomes one layer per array: masks and labels as Labels
layers, the standard deviation with a perceptual colormap.
"""

from __future__ import annotations

from pathlib import Path

_SUFFIXES = {".tif", ".tiff", ".npy", ".zarr"}
#: Array names read as Labels layers.
_LABEL_NAMES = ("mask", "labels", "artifacts")


def get_reader(path):
    """Return :func:`read_volume` when ``path`` is something ctinpaint can open, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(path)
    if path.is_dir():
        if _is_zarr(path) or _has_slices(path):
            return read_volume
        return None
    return read_volume if path.suffix.lower() in _SUFFIXES and path.exists() else None


def read_volume(path) -> list:
    """Open ``path`` lazily (Dask arrays; nothing is read until displayed).

    Returns
    -------
    list of (data, kwargs, layer_type)
    """
    from ctinpaint import open_mask, open_volume

    if isinstance(path, (list, tuple)):
        path = path[0]
    path = Path(path)
    keys = _group_arrays(path) if _is_zarr(path) else None
    if not keys:
        return [(open_volume(path), {"name": path.stem}, "image")]
    layers = []
    for key in keys:
        if key.lower().startswith(_LABEL_NAMES):
            data = open_mask(path, key=key)
            layers.append((data if data.dtype.kind in "iu" else data.astype("uint8"), {"name": key, "opacity": 0.5}, "labels"))
        elif key == "std":
            layers.append((open_volume(path, key=key), {"name": "uncertainty (std)", "colormap": "magma"}, "image"))
        else:
            layers.append((open_volume(path, key=key), {"name": key}, "image"))
    return layers


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / marker).exists() for marker in ("zarr.json", ".zarray", ".zgroup"))


def _has_slices(path: Path) -> bool:
    return any(p.suffix.lower() in {".tif", ".tiff", ".png"} for p in path.iterdir() if p.is_file())


def _group_arrays(path: Path) -> list[str] | None:
    """Names of the 3D arrays of a plain Zarr group; None for an array or an OME-Zarr image."""
    import zarr

    node = zarr.open(store=str(path), mode="r")
    if not isinstance(node, zarr.Group) or "multiscales" in node.attrs or "ome" in node.attrs:
        return None
    return sorted(name for name, array in node.arrays() if array.ndim == 3)
