"""Open volumes lazily and save them atomically.

Every reader returns a 3D Dask array ``(Z, Y, X)`` that has read nothing but
metadata; voxels are read chunk by chunk when a computation asks for them. A 2D
image becomes a one-slice volume. Writers stage the output under a hidden
temporary name beside the target and rename it into place, so a crash never
leaves a half-written file under the final name, and they refuse to write over
the data an array was read from.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ._checks import check_volume_dtype

_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
_SLICE_SUFFIXES = (".tif", ".tiff", ".png")
#: Target size of one chunk for sources that have no chunking of their own.
_CHUNK_BYTES = 32 * 2**20
#: Dask array name -> the file or directory it reads. Used by ``save_volume`` to
#: refuse writing a result over its own input; names are unique per opened source.
_SOURCES: dict[str, Path] = {}


# --------------------------------------------------------------------------- reading


def open_volume(source, *, key: str | None = None, level: int = 0, chunks=None, name: str = "source") -> da.Array:
    """Open a volume lazily as a 3D Dask array.

    Parameters
    ----------
    source : str, os.PathLike, numpy.ndarray, dask.array.Array or zarr.Array/Group
        A TIFF file (single page, multi-page or BigTIFF; read through tifffile's
        Zarr interface, page by page), a folder of 2D TIFF/PNG slices (sorted
        naturally: ``s2.png`` before ``s10.png``), a Zarr v2/v3 array or group, an
        OME-Zarr image, a ``.npy`` file (memory-mapped), a single PNG, or an
        in-memory array.
    key : str, optional
        Array path inside a Zarr group. Required when the group holds several
        arrays and is not an OME-Zarr image.
    level : int, default 0
        Resolution level of an OME-Zarr image or a pyramidal TIFF (0 = full
        resolution).
    chunks : tuple of int or "auto", optional
        Dask chunks. Default: the store's own chunks for Zarr and TIFF; slabs of
        whole slices (about 32 MiB) for sources with no chunking.
    name : str, default "source"
        The argument name error messages use; functions that open their own
        ``volume`` argument through this one pass ``name="volume"``.

    Returns
    -------
    dask.array.Array
        Shape ``(Z, Y, X)``; dtype uint8, uint16, int16 or float32 in native byte
        order. Nothing has been read yet.

    Raises
    ------
    TypeError
        Unsupported source type or dtype.
    ValueError
        Missing, corrupt or unsupported file (the path is named), or an array
        that is not 2D or 3D.

    Examples
    --------
    >>> import numpy as np
    >>> vol = open_volume(np.zeros((4, 32, 32), dtype=np.uint16))
    >>> vol.shape, vol.dtype
    ((4, 32, 32), dtype('uint16'))
    """
    arr = _open_any(source, key=key, level=level, chunks=chunks, name=name)
    check_volume_dtype(arr.dtype, name=name)
    return arr


def open_mask(source, *, shape=None, key: str | None = None, level: int = 0, chunks=None, name: str = "mask") -> da.Array:
    """Open an artifact mask or label volume lazily as a 3D Dask array.

    Parameters
    ----------
    source : path or array
        Anything :func:`open_volume` accepts, holding a boolean mask or integer
        labels (nonzero = artifact; distinct labels are distinct artifacts).
    shape : tuple of int, optional
        The volume's shape; a mask of another shape is refused.
    key, level, chunks
        As for :func:`open_volume`.
    name : str, default "mask"
        The argument name error messages use (e.g. "exclude").

    Returns
    -------
    dask.array.Array
        Shape ``(Z, Y, X)``, dtype bool or an integer type.

    Raises
    ------
    TypeError
        A float or complex mask.
    ValueError
        Shape differs from ``shape``; unreadable source.

    Examples
    --------
    >>> import numpy as np
    >>> open_mask(np.zeros((8, 8), dtype=bool), shape=(1, 8, 8)).shape
    (1, 8, 8)
    """
    arr = _open_any(source, key=key, level=level, chunks=chunks, name=name)
    if arr.dtype != bool and arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: dtype {arr.dtype} is not a mask; expected bool or integer labels")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ValueError(f"{name} shape {tuple(arr.shape)} does not match the volume shape {tuple(shape)}")
    return arr


def count_nonfinite(volume) -> int:
    """Count NaN and infinite voxels, chunk by chunk.

    Parameters
    ----------
    volume : numpy.ndarray or dask.array.Array
        Any volume; integer volumes return 0 without reading anything.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> count_nonfinite(np.array([[[0.0, np.nan, np.inf]]], dtype=np.float32))
    2
    """
    dtype = np.dtype(volume.dtype)
    if dtype.kind not in "fc":
        return 0
    arr = volume if isinstance(volume, da.Array) else da.from_array(volume, chunks=_default_chunks(volume.shape, dtype))
    return int((~da.isfinite(arr)).sum().compute())


def source_of(array) -> Path | None:
    """The file or directory a Dask array (or anything computed from it) reads, if known.

    Parameters
    ----------
    array : dask.array.Array or any object

    Returns
    -------
    pathlib.Path or None
        The first source found in the array's task graph; None for in-memory data.
    """
    sources = _sources_in_graph(array)
    return sources[0] if sources else None


def _open_any(source, *, key, level, chunks, name) -> da.Array:
    if isinstance(source, da.Array):
        arr = source
        if chunks is not None:
            arr = arr.rechunk(chunks)
    elif isinstance(source, np.ndarray):
        arr = da.from_array(source, chunks=chunks or _default_chunks(source.shape, source.dtype))
    elif isinstance(source, (str, os.PathLike)):
        arr = _open_path(Path(source), key=key, level=level, chunks=chunks, name=name)
    elif _is_zarr_node(source):
        arr = _from_zarr_node(source, key=key, level=level, chunks=chunks, where=f"{name} (Zarr object)")
    else:
        raise TypeError(
            f"{name}: cannot open a {type(source).__name__}; pass a path, a NumPy or Dask array, or a Zarr array/group"
        )
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a 2D image or a 3D volume, got {arr.ndim} dimensions (shape {arr.shape})")
    if arr.dtype.byteorder not in "=|":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _open_path(path: Path, *, key, level, chunks, name) -> da.Array:
    if not path.exists():
        raise ValueError(f"{name}: {path} does not exist")
    resolved = path.resolve()
    try:
        if path.is_dir():
            if _is_zarr_dir(path):
                arr = _open_zarr(path, key=key, level=level, chunks=chunks)
            else:
                arr = _open_slice_folder(path, chunks=chunks)
        else:
            suffix = path.suffix.lower()
            if suffix in _TIFF_SUFFIXES:
                arr = _open_tiff(path, level=level, chunks=chunks)
            elif suffix == ".npy":
                mm = np.load(path, mmap_mode="r", allow_pickle=False)
                arr = da.from_array(mm, chunks=chunks or _default_chunks(mm.shape, mm.dtype))
            elif suffix == ".png":
                arr = da.from_array(_read_slice(path), chunks=chunks or "auto")
            else:
                raise ValueError(f"unsupported file type {path.suffix!r} (expected TIFF, PNG, .npy, a Zarr store or a folder of slices)")
    except (TypeError, ValueError) as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{name}: cannot read {path}: {exc}") from exc
    except Exception as exc:  # corrupt files surface as many exception types deep in the codecs
        raise ValueError(f"{name}: cannot read {path}: {type(exc).__name__}: {exc}") from exc
    _SOURCES[arr.name] = resolved
    return arr


def _is_zarr_dir(path: Path) -> bool:
    return any((path / marker).exists() for marker in ("zarr.json", ".zarray", ".zgroup"))


def _is_zarr_node(obj) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("zarr.") and hasattr(obj, "attrs")


def _open_zarr(path: Path, *, key, level, chunks) -> da.Array:
    import zarr

    node = zarr.open(store=str(path), mode="r")
    return _from_zarr_node(node, key=key, level=level, chunks=chunks, where=str(path))


def _from_zarr_node(node, *, key, level, chunks, where) -> da.Array:
    import zarr

    if isinstance(node, zarr.Group):
        if key is not None:
            if not isinstance(key, str):
                raise TypeError(f"key must be a string, got {type(key).__name__}")
            try:
                present = key in node
            except ValueError as exc:  # Zarr refuses keys like "../x" outright
                raise ValueError(f"key: {key!r} is not a path inside the Zarr group {where}: {exc}") from exc
            if not present:
                raise ValueError(f"key: {key!r} is not in the Zarr group {where} (it holds: {_members(node)})")
            node = node[key]
            if isinstance(node, zarr.Group):
                return _from_zarr_node(node, key=None, level=level, chunks=chunks, where=f"{where}/{key}")
        else:
            multiscales = _ome_multiscales(node.attrs)
            if multiscales is not None:
                return _from_ome(node, multiscales, level=level, chunks=chunks, where=where)
            arrays = sorted(name for name, _ in node.arrays())
            if len(arrays) != 1:
                raise ValueError(
                    f"key: {where} is a Zarr group holding {_members(node)}; pass key= to choose an array"
                )
            node = node[arrays[0]]
    return _lazy(node, chunks, where)


def _lazy(array, chunks, where) -> da.Array:
    """A Dask array reading ``array`` (Zarr, or a TIFF through its Zarr store) chunk by chunk."""
    from dask.base import tokenize

    checked = _CheckedReads(array, where)
    return da.from_array(checked, chunks=chunks or array.chunks, name=f"from-zarr-{tokenize(array, chunks, where)}",
                         meta=np.empty((0,) * array.ndim, dtype=array.dtype))


class _CheckedReads:
    """An array whose read errors name the file they came from.

    Opening reads only metadata, so a corrupt or truncated chunk shows up when
    it is read, from deep inside a codec (zstd, deflate, tifffile) with a
    message that names neither the file nor the chunk. Reads through this
    wrapper raise a ValueError that does.
    """

    def __init__(self, array, where):
        self._array, self._where = array, where
        self.shape, self.dtype, self.ndim, self.chunks = array.shape, array.dtype, array.ndim, array.chunks

    def __getitem__(self, index):
        try:
            return self._array[index]
        except Exception as exc:  # codec errors come as many types
            raise ValueError(f"cannot read {self._where} at {_describe(index)}: {type(exc).__name__}: {exc}") from exc


def _describe(index) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(f"{s.start}:{s.stop}" if isinstance(s, slice) else str(s) for s in parts) + "]"


def _members(group) -> str:
    names = sorted(name for name, _ in group.members())
    return ", ".join(repr(n) for n in names) or "nothing"


def _ome_multiscales(attrs):
    attrs = dict(attrs)
    if "ome" in attrs and isinstance(attrs["ome"], Mapping):  # OME-Zarr 0.5
        attrs = attrs["ome"]
    multiscales = attrs.get("multiscales")
    if isinstance(multiscales, list) and multiscales:
        return multiscales[0]
    return None


def _from_ome(group, multiscales, *, level, chunks, where) -> da.Array:
    datasets = multiscales.get("datasets", [])
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level < len(datasets):
        raise ValueError(f"level: {level!r} is not a resolution level of {where} (levels 0..{len(datasets) - 1})")
    arr = group[datasets[level]["path"]]
    data = _lazy(arr, chunks, where)
    axes = multiscales.get("axes")
    names = [a["name"] if isinstance(a, Mapping) else str(a) for a in axes] if axes else None
    if names is None or len(names) != data.ndim:
        names = ["?"] * (data.ndim - 3) + ["z", "y", "x"][-min(3, data.ndim):]
    # Non-spatial axes (time, channel) must be singletons: the networks see one channel.
    index = []
    for axis_name, size in zip(names, data.shape, strict=True):
        if axis_name in ("z", "y", "x"):
            index.append(slice(None))
        elif size == 1:
            index.append(0)
        else:
            raise ValueError(
                f"source: OME-Zarr image {where} has {size} entries along axis {axis_name!r}; "
                "ctinpaint works on one channel and time point at a time (select one with a Zarr view first)"
            )
    return data[tuple(index)]


def _open_tiff(path: Path, *, level, chunks) -> da.Array:
    import tifffile
    import zarr

    # tifffile logs a damaged page chain (a truncated file) and then reads fewer pages, or none:
    # refused here rather than returning a shorter volume.
    with _tifffile_complaints() as complaints:
        store = tifffile.imread(path, aszarr=True)
        node = zarr.open(store=store, mode="r")
    if complaints:
        raise ValueError(f"{path} is truncated or corrupt: {complaints[0]}")
    if isinstance(node, zarr.Group):  # pyramidal TIFF: one array per level, named "0", "1", ...
        levels = sorted((name for name, _ in node.arrays()), key=_natural_key)
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level < len(levels):
            raise ValueError(f"level: {level!r} is not a resolution level of {path} (levels 0..{len(levels) - 1})")
        node = node[levels[level]]
    if node.ndim == 3 and node.shape[-1] in (3, 4) and node.shape[0] > 4:
        raise ValueError(f"source: {path} is an RGB(A) image; ctinpaint reads grayscale volumes")
    return _lazy(node, chunks, str(path))


@contextlib.contextmanager
def _tifffile_complaints():
    """Collect tifffile's warnings about the file's structure while the block runs."""
    import logging

    messages = []

    class _Collect(logging.Handler):
        def emit(self, record):
            text = record.getMessage()
            if any(word in text for word in ("invalid page offset", "failed to reshape", "corrupted", "truncated")):
                messages.append(text)

    logger = logging.getLogger("tifffile")
    handler = _Collect(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _read_slice(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".png":
        import imageio.v3 as iio

        image = iio.imread(path)
    else:
        import tifffile

        image = tifffile.imread(path)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        # Grayscale saved as RGB(A) is common; anything truly coloured is refused.
        rgb = image[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise ValueError(f"{path} is a colour image; ctinpaint reads grayscale slices")
        image = rgb[..., 0]
    if image.ndim != 2:
        raise ValueError(f"{path} is not a 2D slice (shape {image.shape})")
    return image


def _open_slice_folder(path: Path, *, chunks) -> da.Array:
    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _SLICE_SUFFIXES and not p.name.startswith(".")),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise ValueError("the folder holds no Zarr store and no TIFF/PNG slices")
    first = _read_slice(files[0])
    read = dask.delayed(_read_checked_slice, pure=True)
    slices = [da.from_array(first, chunks=first.shape)] + [
        da.from_delayed(read(f, first.shape, first.dtype), shape=first.shape, dtype=first.dtype) for f in files[1:]
    ]
    arr = da.stack(slices)
    return arr.rechunk(chunks) if chunks is not None else arr


def _read_checked_slice(path: Path, shape, dtype) -> np.ndarray:
    image = _read_slice(path)
    if image.shape != shape or image.dtype != dtype:
        raise ValueError(
            f"{path}: slice is {image.shape} {image.dtype}, but the first slice is {shape} {dtype}; all slices must match"
        )
    return image


def _default_chunks(shape, dtype):
    """Slabs of whole slices of about ``_CHUNK_BYTES``; plain 'auto' when one slice is larger."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3:
        return "auto"
    slice_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    if slice_bytes == 0 or slice_bytes > _CHUNK_BYTES:
        return "auto"
    depth = max(1, min(shape[0], _CHUNK_BYTES // slice_bytes))
    return (depth, *shape[1:])


# --------------------------------------------------------------------------- writing


def save_volume(data, path, *, chunks=None, overwrite: bool = False, attrs: Mapping | None = None) -> Path:
    """Write a volume (or several, as a Zarr group) atomically.

    The output is written under a hidden temporary name in the target's folder
    and renamed into place when complete, so a crash never leaves a half-written
    file under ``path``. Writing is chunk by chunk: the volume is never held in
    memory whole.

    Parameters
    ----------
    data : array-like or mapping of str to array-like
        A 2D/3D NumPy or Dask array (2D is saved as one slice), or a mapping of
        names to arrays, saved as the arrays of one Zarr group.
    path : str or os.PathLike
        Output path. ``.tif``/``.tiff`` writes a multi-page TIFF (BigTIFF when
        larger than 2 GiB; bool is written as uint8 0/1); anything else writes a
        Zarr v3 store (zstd-compressed).
    chunks : tuple of int, optional
        Zarr chunk shape; default: the Dask array's chunks when regular,
        otherwise up to ``(64, 256, 256)``.
    overwrite : bool, default False
        Replace an existing ``path``. Never allowed when ``path`` is (or
        contains, or lies inside) a source the data was read from.
    attrs : mapping, optional
        JSON-serialisable attributes stored on the Zarr array or group.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        ``path`` exists and ``overwrite`` is False; ``path`` is the input of
        ``data``; its folder is missing or not writable; a mapping with a TIFF
        path; an array that is not 2D/3D.
    OSError
        A write that fails (disk full); the temporary output is removed.
    TypeError
        Unsupported ``data`` type or dtype.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> out = save_volume(np.zeros((2, 8, 8), np.uint8), os.path.join(tempfile.mkdtemp(), "v.zarr"))
    >>> open_volume(out).shape
    (2, 8, 8)
    """
    path = Path(path)
    arrays = dict(data) if isinstance(data, Mapping) else {None: data}
    if not arrays:
        raise ValueError("data: the mapping is empty; nothing to save")
    as_tiff = path.suffix.lower() in (".tif", ".tiff")
    if as_tiff and (len(arrays) != 1 or None not in arrays):
        raise ValueError("path: a TIFF file holds one volume; save several arrays to a .zarr path")
    prepared = {}
    for name, array in arrays.items():
        label = "data" if name is None else f"data[{name!r}]"
        if name is not None and (not isinstance(name, str) or not name or "/" in name or name.startswith(".")):
            raise ValueError(f"data: array name {name!r} is not a plain name")
        prepared[name] = _prepare_for_writing(array, label)
        _refuse_own_input(prepared[name], path, label)
    if path.exists() and not overwrite:
        raise ValueError(f"path: {path} already exists; pass overwrite=True to replace it")
    if not path.parent.exists():
        raise ValueError(f"path: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"path: the folder {path.parent} is not writable")

    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        if as_tiff:
            _write_tiff(prepared[None], tmp)
        else:
            _write_zarr(prepared, tmp, chunks=chunks, attrs=dict(attrs or {}))
        _replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def _prepare_for_writing(array, label) -> da.Array:
    if isinstance(array, da.Array):
        arr = array
    elif isinstance(array, np.ndarray):
        arr = da.from_array(array, chunks=_default_chunks(array.shape, array.dtype))
    else:
        raise TypeError(f"{label}: cannot save a {type(array).__name__}; pass a NumPy or Dask array")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"{label}: expected a 2D or 3D array, got {arr.ndim} dimensions")
    if arr.dtype != bool and arr.dtype.kind not in "iuf":
        raise TypeError(f"{label}: dtype {arr.dtype} cannot be saved (bool, integer or float only)")
    return arr


def _sources_in_graph(array) -> list[Path]:
    if not isinstance(array, da.Array):
        return []
    names = set(array.dask.layers) if hasattr(array.dask, "layers") else {k[0] for k in array.dask if isinstance(k, tuple)}
    names.add(array.name)
    return [src for name, src in _SOURCES.items() if name in names]


def _refuse_own_input(array: da.Array, path: Path, label: str) -> None:
    target = path.resolve()
    for src in _sources_in_graph(array):
        if target == src or src in target.parents or target in src.parents:
            raise ValueError(
                f"path: {path} would overwrite the input {src} that {label} is read from; write to a new path"
            )


def _write_zarr(arrays: dict, tmp: Path, *, chunks, attrs) -> None:
    import zarr
    from zarr.codecs import ZstdCodec

    def create(store_or_group, arr, name):
        zchunks = _zarr_chunks(arr, chunks)
        kwargs = dict(shape=arr.shape, dtype=arr.dtype, chunks=zchunks, compressors=ZstdCodec(level=3, checksum=True), fill_value=0)
        if name is None:
            target = zarr.create_array(store=str(store_or_group), attributes=attrs, **kwargs)
        else:
            target = store_or_group.create_array(name=name, **kwargs)
        # Dask chunks equal to Zarr chunks: no two tasks ever write the same chunk.
        da.store(arr.rechunk(zchunks), target, lock=False)

    if set(arrays) == {None}:
        create(tmp, arrays[None], None)
    else:
        group = zarr.open_group(store=str(tmp), mode="w-", attributes=attrs)
        for name, arr in arrays.items():
            create(group, arr, name)


def _zarr_chunks(arr: da.Array, chunks):
    if chunks is not None:
        chunks = tuple(int(c) for c in chunks)
        if len(chunks) != arr.ndim or min(chunks) < 1:
            raise ValueError(f"chunks: {chunks} is not a chunk shape for a {arr.ndim}D array")
        return tuple(min(c, max(s, 1)) for c, s in zip(chunks, arr.shape, strict=True))
    regular = all(len(set(c[:-1])) <= 1 and (len(c) == 1 or c[-1] <= c[0]) for c in arr.chunks)
    if regular and all(c for c in arr.chunks):
        return tuple(c[0] for c in arr.chunks)
    return tuple(max(1, min(limit, s)) for limit, s in zip((64, 256, 256), arr.shape, strict=True))


def _write_tiff(arr: da.Array, tmp: Path) -> None:
    import tifffile

    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    bigtiff = arr.nbytes > 2**31

    def pages():
        # One slice in memory at a time.
        for z in range(arr.shape[0]):
            yield np.asarray(arr[z].compute())

    tifffile.imwrite(tmp, pages(), shape=arr.shape, dtype=arr.dtype, bigtiff=bigtiff, photometric="minisblack")


def _replace(tmp: Path, path: Path) -> None:
    if tmp.is_dir() and path.exists():
        # Directories cannot be swapped atomically: move the old one aside first,
        # so there is always either the old or the new output, never a mix.
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)
            raise
        _remove(old)
    else:
        if path.is_dir():
            _remove(path)
        os.replace(tmp, path)


class OutputLock:
    """An exclusive claim on writing ``path``, held until :meth:`release`.

    A lock file ``.NAME.lock`` beside ``path`` is locked with ``flock``. The
    kernel drops the lock when the process ends, however it ends, so a killed
    job never leaves a stale lock behind; a second job asking for the same
    path while the first holds it is refused at once. Without ``fcntl``
    (Windows) there is no lock.

    Parameters
    ----------
    path : pathlib.Path
        The output to be written.
    name : str
        The argument name the refusal's message uses.
    lock_file : pathlib.Path, optional
        Default ``.NAME.lock`` beside ``path``; a folder that is written in
        place (a training run) keeps its lock inside.

    Raises
    ------
    ValueError
        Another process (or another job in this one) holds the lock.
    """

    def __init__(self, path: Path, *, name: str, lock_file: Path | None = None):
        self._path = lock_file if lock_file is not None else path.parent / f".{path.name}.lock"
        self._fd = None
        try:
            import fcntl
        except ImportError:
            return
        while True:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ValueError(
                    f"{name}: another job is writing {path} (it holds {self._path}); wait for it to finish"
                ) from None
            # The holder before us removes the file when it releases: a lock on that
            # unlinked file guards nothing, so lock the file now at the path instead.
            try:
                current = os.stat(self._path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                self._fd = fd
                return
            os.close(fd)

    def __getstate__(self):
        # A copy sent to another process (a Dask worker) holds no lock: only the owner releases it.
        return {**self.__dict__, "_fd": None}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release()

    def release(self) -> None:
        """Give the lock up and remove its file (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self._path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
