"""The core packages stay free of GUI toolkits and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import ctinpaint


def test_every_exported_name_resolves():
    for name in ctinpaint.__all__:
        assert getattr(ctinpaint, name) is not None


def test_core_imports_no_gui_and_import_is_lazy():
    code = (
        "import sys, ctinpaint, gan_zoo; "
        "assert 'torch' not in sys.modules and 'dask' not in sys.modules, 'import ctinpaint must stay cheap'; "
        "ctinpaint.inpaint_volume; ctinpaint.train_model; ctinpaint.evaluate_model; import gan_zoo.training; "
        "import ctinpaint.cli, ctinpaint.figures, ctinpaint.demo; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide6') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError, match="nothing_here"):
        ctinpaint.nothing_here  # noqa: B018
