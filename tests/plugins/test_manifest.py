"""The plugin's manifest, its discovery by napari, and the core packages staying free of GUI code."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("napari", reason="the napari plugin needs the napari extra: pip install -e '.[napari]'")


def test_manifest_validates_with_npe2():
    done = subprocess.run([sys.executable, "-m", "npe2", "validate", "ctinpaint", "--imports"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout


def test_napari_discovers_every_contribution():
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("ctinpaint")
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets] == ["Inpaint artifacts"]
    assert [s.key for s in contributions.sample_data] == ["phantom"]
    assert contributions.readers[0].accepts_directories


def test_core_packages_never_import_napari_or_qt():
    # Every module of ctinpaint and gan_zoo, imported in a fresh interpreter that has napari installed.
    code = """
import importlib, pkgutil, sys
import ctinpaint, gan_zoo
names = []
for package in (ctinpaint, gan_zoo):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith(".__main__"):  # runs the command line when imported
            continue
        importlib.import_module(info.name)
        names.append(info.name)
assert len(names) > 15, names
gui = sorted(m for m in sys.modules if m.split(".")[0] in {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy", "magicgui", "superqt"})
assert not gui, gui
print(len(names))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_reader_is_offered_for_volumes_and_folders_but_not_for_plain_images(tmp_path):
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    (tmp_path / "slices").mkdir()

    def offers(path):
        return "ctinpaint" in [reader.plugin_name for reader in manager.iter_compatible_readers([str(path)])]

    assert offers(tmp_path / "scan.zarr") and offers(tmp_path / "scan.tif") and offers(tmp_path / "slices")
    assert not offers(tmp_path / "photo.png")  # napari's own reader keeps single images
