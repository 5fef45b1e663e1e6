"""Tests for ctinpaint.intensity: robust fitting, round trips, serialisation, errors."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest

from ctinpaint.intensity import IntensityMapping, fit_intensity


def test_fit_ignores_outliers_and_masked_voxels():
    rng = np.random.default_rng(0)
    vol = rng.normal(1000, 100, (8, 64, 64)).clip(0, 65535).astype(np.uint16)
    vol[0, 0, :20] = 65535  # a few saturated zingers
    mask = np.zeros(vol.shape, bool)
    mask[3, 10:40, 10:40] = True
    vol[mask] = 0  # an artifact region that must not pull the low end down
    m = fit_intensity(vol, mask=mask, percentiles=(1, 99))
    assert m.dtype == "uint16"
    assert 700 < m.low < 800 and 1200 < m.high < 1300
    expected = np.percentile(vol[~mask].astype(float), [1, 99])
    np.testing.assert_allclose([m.low, m.high], expected, rtol=0.01)


def test_fit_reads_only_sampled_blocks():
    reads = []

    def record(block, block_info=None):
        reads.append(block_info[0]["chunk-location"])
        return block

    vol = da.ones((64, 64, 64), dtype=np.float32, chunks=16).map_blocks(record, dtype=np.float32)
    fit_intensity(vol, n_blocks=5, seed=3)
    assert len(set(reads)) == 5


def test_fit_is_deterministic_and_chunk_independent_when_all_blocks_are_read():
    rng = np.random.default_rng(1)
    vol = rng.integers(0, 255, (6, 40, 40)).astype(np.uint8)
    a = fit_intensity(vol, n_blocks=1000)
    b = fit_intensity(da.from_array(vol, chunks=(2, 13, 17)), n_blocks=1000)
    assert a == b
    assert fit_intensity(vol, seed=5) == fit_intensity(vol, seed=5)


def test_constant_volume_stays_invertible():
    m = fit_intensity(np.full((2, 8, 8), 42, np.uint8))
    assert m.low == 42 and m.high == 43


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_round_trip_inside_range_is_exact_for_integers(dtype):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    low, high = (float(info.min), float(info.max)) if info else (-2.5, 7.0)
    m = IntensityMapping(low=low, high=high, dtype=dtype)
    rng = np.random.default_rng(2)
    if info:
        values = rng.integers(info.min, info.max, 1000, endpoint=True).astype(dtype)
        np.testing.assert_array_equal(m.from_network(m.to_network(values)), values)
    else:
        values = rng.uniform(low, high, 1000).astype(np.float32)
        np.testing.assert_allclose(m.from_network(m.to_network(values)), values, rtol=1e-6, atol=1e-6)
    assert m.to_network(values).dtype == np.float32


def test_to_network_clips_and_from_network_rounds_and_clips():
    m = IntensityMapping(low=10.0, high=20.0, dtype="uint8")
    np.testing.assert_array_equal(m.to_network(np.array([0, 10, 15, 20, 30])), np.float32([0, 0, 0.5, 1, 1]))
    out = m.from_network(np.array([-100.0, 0.04, 0.06, 30.0]))
    np.testing.assert_array_equal(out, np.uint8([0, 10, 11, 255]))
    assert out.dtype == np.uint8


def test_float32_output_is_not_clipped():
    m = IntensityMapping(low=0.0, high=2.0, dtype="float32")
    np.testing.assert_allclose(m.from_network(np.array([-0.5, 1.5])), np.float32([-1.0, 3.0]))


def test_std_in_volume_units():
    m = IntensityMapping(low=100.0, high=300.0, dtype="uint16")
    out = m.std_to_volume(np.array([0.0, 0.1]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 20.0])


def test_inputs_are_not_modified():
    m = IntensityMapping(low=0.0, high=10.0, dtype="float32")
    values = np.array([1.0, 20.0], np.float32)
    m.to_network(values)
    m.from_network(values)
    np.testing.assert_array_equal(values, [1.0, 20.0])


def test_json_round_trip():
    m = IntensityMapping(low=1.5, high=99.0, dtype="int16")
    assert IntensityMapping.from_dict(json.loads(json.dumps(m.to_dict()))) == m


@pytest.mark.parametrize(
    "data, match",
    [
        ([1, 2], "JSON object"),
        ({"low": 0, "high": 1}, "keys"),
        ({"low": 0, "high": 1, "dtype": "uint8", "code": "rm -rf"}, "keys"),
        ({"low": "0", "high": 1, "dtype": "uint8"}, "low"),
        ({"low": 0, "high": 1, "dtype": "object"}, "dtype"),
        ({"low": 5, "high": 1, "dtype": "uint8"}, "high"),
    ],
)
def test_from_dict_rejects_bad_json(data, match):
    with pytest.raises(ValueError, match=match):
        IntensityMapping.from_dict(data)


def test_mapping_validation():
    with pytest.raises(ValueError, match="high"):
        IntensityMapping(low=1.0, high=1.0, dtype="uint8")
    with pytest.raises(ValueError, match="low"):
        IntensityMapping(low=float("nan"), high=1.0, dtype="uint8")
    with pytest.raises(TypeError, match="dtype"):
        IntensityMapping(low=0.0, high=1.0, dtype="float64")


def test_nan_policy():
    vol = np.ones((2, 8, 8), np.float32)
    vol[0, 0, 0:3] = np.nan
    vol[1, 1, 1] = np.inf
    vol[1, 2, 2] = 3.0
    with pytest.raises(ValueError, match="4 NaN/Inf"):
        fit_intensity(vol)
    m = fit_intensity(vol, nan_policy="mask", percentiles=(0, 100))
    assert (m.low, m.high) == (1.0, 3.0)


def test_fit_errors():
    vol = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="percentiles"):
        fit_intensity(vol, percentiles=(50, 10))
    with pytest.raises(ValueError, match=r"percentiles\[1\]"):
        fit_intensity(vol, percentiles=(0, 101))
    with pytest.raises(TypeError, match="percentiles"):
        fit_intensity(vol, percentiles=5)
    with pytest.raises(ValueError, match="n_blocks"):
        fit_intensity(vol, n_blocks=0)
    with pytest.raises(ValueError, match="nan_policy"):
        fit_intensity(vol, nan_policy="ignore")
    with pytest.raises(ValueError, match="mask shape"):
        fit_intensity(vol, mask=np.zeros((2, 8, 9), bool))
    with pytest.raises(ValueError, match="no unmasked"):
        fit_intensity(vol, mask=np.ones(vol.shape, bool))
    with pytest.raises(TypeError, match="volume"):
        fit_intensity(np.zeros((2, 8, 8), np.float64))
