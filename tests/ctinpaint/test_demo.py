"""Tests for ctinpaint.demo's helpers (the demo end to end runs in test_cli.py)."""

from __future__ import annotations

from ctinpaint.demo import _artifact_table, _panel_rows


def _row(slice_, r0, c0, r1, c1, max_std, status="filled"):
    return {"slice": slice_, "r0": r0, "c0": c0, "r1": r1, "c1": c1, "max_std": max_std, "status": status}


def test_panel_rows_keep_artifacts_the_drawn_window_covers_most_uncertain_first():
    report = [
        _row(0, 40, 40, 50, 52, 1.0),  # fits: 10 x 12 inside an 18 x 18 box
        _row(1, 0, 40, 6, 50, 9.0),  # touches the top border: its window would leave the slice
        _row(2, 30, 30, 60, 40, 8.0),  # taller than the hole: needs several windows
        _row(3, 70, 70, 88, 88, 5.0),  # exactly the hole: fits
        _row(4, 40, 40, 44, 44, 7.0, status="refused"),
    ]
    rows = _panel_rows(report, (100, 100), 32, 18, k=6)
    assert [z for z, _, _ in rows] == [3, 0]
    for z, r0, c0 in rows:
        art = next(r for r in report if r["slice"] == z)
        # The artifact lies inside the central 18 x 18 box of the 32 x 32 window.
        assert r0 + 7 <= art["r0"] and art["r1"] <= r0 + 7 + 18
        assert c0 + 7 <= art["c0"] and art["c1"] <= c0 + 7 + 18
        assert 0 <= r0 <= 100 - 32 and 0 <= c0 <= 100 - 32
    assert len(_panel_rows(report, (100, 100), 32, 18, k=1)) == 1


def test_artifact_table_leaves_biharmonic_spread_blank():
    gan = {"mae": 0.05, "psnr": 21.6, "ssim": 0.99, "coverage_1sigma": 0.7, "coverage_2sigma": 0.94,
           "interval_coverage": 0.98, "std_error_corr": 0.46, "mean_std": 0.07}
    base = dict(gan, coverage_1sigma=0.001, coverage_2sigma=0.001, interval_coverage=0.001, std_error_corr=0.0, mean_std=0.0)
    lines = _artifact_table(gan, base, 42, 1000).splitlines()
    assert lines[0].startswith("42 artifact regions")
    row = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert row["coverage_2sigma"] == ["94.0%", "—"] and row["mean_std"] == ["0.0700", "—"]
    assert row["mae"] == ["0.0500", "0.0500"]
