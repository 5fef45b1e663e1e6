"""Compare a phantom slice with a real micro-CT slice, side by side.

Writes one PNG (default ``phantom_vs_real.png``, or the path given as the first
argument) with three 256 x 256 panels on the same 8-bit grey scale:

1. a crop of the real SiC/diamond slice ``slice24.png`` (skipped, with a
   message, when ``../shared/data`` is not beside the repository);
2. a slice of :func:`ctinpaint.phantom.make_phantom` as uint8;
3. the same slice after :func:`ctinpaint.phantom.add_artifacts`, with a red
   line around every artifact.

Only NumPy and imageio are used, so the script runs with the core install::

    python examples/phantom_vs_real.py compare.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from ctinpaint.phantom import add_artifacts, make_phantom

SIC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sic_diamonds"
CROP = 256
GAP = 8


def real_crop() -> np.ndarray | None:
    path = SIC_DIR / "slice24.png"
    if not path.exists():
        print(f"real slice not found at {path}; showing the phantom only")
        return None
    image = iio.imread(path)
    if image.ndim == 3:
        image = image[..., 0]
    return image[:CROP, :CROP]


def outlined(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB copy of ``image`` with a red line just outside each artifact.

    The line is drawn outside the mask so the corrupted pixels, even those of
    one-pixel streaks, stay visible.
    """
    height, width = mask.shape
    padded = np.pad(mask, 1)
    grown = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[dy : dy + height, dx : dx + width]
    rgb = np.repeat(image[..., None], 3, axis=2)
    rgb[grown & ~mask] = (255, 0, 0)
    return rgb


def main(out: Path) -> None:
    volume = make_phantom((8, CROP, CROP), seed=0, dtype="uint8")
    # Enough artifacts that several cross the slice shown.
    corrupted = add_artifacts(volume, n=40, seed=0)
    k = volume.shape[0] // 2
    panels, names = [], []
    real = real_crop()
    if real is not None:
        panels.append(np.repeat(real[..., None], 3, axis=2))
        names.append("real slice24 crop")
    panels.append(np.repeat(volume[k][..., None], 3, axis=2))
    panels.append(outlined(corrupted.volume[k], corrupted.mask[k]))
    names += [f"phantom slice {k}", "phantom + artifacts (outlined)"]

    gap = np.full((CROP, GAP, 3), 255, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    iio.imwrite(out, np.concatenate(row, axis=1))
    print(f"wrote {out}: {', '.join(names)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("phantom_vs_real.png"))
