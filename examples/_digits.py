"""The digits the gan_zoo examples train on, with scikit-learn's 8x8 digits as the fallback."""

from __future__ import annotations

from gan_zoo.data import load_dataset


def digits(spec: str, *, kind: str = "", **options):
    """``load_dataset(kind:spec)``, or the same built on scikit-learn's digits where ``spec`` is not installed.

    ``kind`` is "" for plain digits, "thin-bold" or "digit-domains" for styled ones.
    """
    prefix = f"{kind}:" if kind else ""
    try:
        return load_dataset(prefix + spec, **options)
    except ValueError as exc:
        print(f"{spec} not available ({exc}); using scikit-learn's digits")
        return load_dataset(prefix + "digits", split=options.get("split", "train"))
