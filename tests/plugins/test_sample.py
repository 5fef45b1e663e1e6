"""Tests for napari_ctinpaint._sample: the phantom sample through napari's sample menu."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari", reason="the napari plugin needs the napari extra: pip install -e '.[napari]'")


def test_sample_data_loads_phantom_artifacts_and_truth(make_napari_viewer):
    from ctinpaint import add_artifacts, make_phantom

    viewer = make_napari_viewer()
    viewer.open_sample("ctinpaint", "phantom")
    assert [layer.name for layer in viewer.layers] == ["truth", "phantom", "artifacts"]
    phantom, artifacts, truth = viewer.layers["phantom"], viewer.layers["artifacts"], viewer.layers["truth"]
    assert phantom.data.shape == (16, 128, 128) and phantom.data.dtype == np.uint16
    assert type(artifacts).__name__ == "Labels" and not truth.visible
    # The same volume ctinpaint makes for the same seed; the artifacts differ from the truth only inside the mask.
    expected = add_artifacts(make_phantom((16, 128, 128), seed=0), n=12, seed=0)
    np.testing.assert_array_equal(phantom.data, expected.volume)
    np.testing.assert_array_equal(artifacts.data != 0, expected.mask)
    assert np.array_equal(phantom.data[~expected.mask], truth.data[~expected.mask])
