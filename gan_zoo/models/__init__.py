"""The zoo's models, one module each, and the registry that builds them by name.

========== ================================ =====================================
name       class                            paper
========== ================================ =====================================
gan        :class:`~.gan.GAN`               Goodfellow et al., 2014
dcgan      :class:`~.dcgan.DCGAN`           Radford et al., 2015
cgan       :class:`~.cgan.CGAN`             Mirza & Osindero, 2014
cyclegan   :class:`~.cyclegan.CycleGAN`     Zhu et al., 2017
stargan    :class:`~.stargan.StarGAN`       Choi et al., 2018
========== ================================ =====================================
"""

from __future__ import annotations

from .base import ZooConfig, ZooModel, check_images
from .cgan import CGAN, CGANConfig
from .cyclegan import CycleGAN, CycleGANConfig
from .dcgan import DCGAN, DCGANConfig
from .gan import GAN, GANConfig
from .stargan import StarGAN, StarGANConfig

__all__ = [
    "MODELS",
    "build",
    "ZooConfig",
    "ZooModel",
    "check_images",
    "GAN",
    "GANConfig",
    "DCGAN",
    "DCGANConfig",
    "CGAN",
    "CGANConfig",
    "CycleGAN",
    "CycleGANConfig",
    "StarGAN",
    "StarGANConfig",
]

#: Model name -> model class (each with its ``config_class``).
MODELS: dict[str, type[ZooModel]] = {
    "gan": GAN,
    "dcgan": DCGAN,
    "cgan": CGAN,
    "cyclegan": CycleGAN,
    "stargan": StarGAN,
}


def build(name: str, *, seed: int | None = None, **config) -> ZooModel:
    """Build a model of the zoo by name, with its config's defaults overridden by ``config``.

    Parameters
    ----------
    name : {"gan", "dcgan", "cgan", "cyclegan", "stargan"}
    seed : int, optional
        Seeds torch before the weights are initialised (same seed, same weights).
    **config
        Fields of the model's config dataclass (e.g. ``image_size=28,
        channels=1`` for the MNIST DCGAN).

    Returns
    -------
    ZooModel
        In training mode, on the CPU.

    Raises
    ------
    ValueError
        Unknown ``name`` (the known ones are listed), unknown config fields
        (the model's fields are listed), invalid values (naming the field).

    Examples
    --------
    >>> model = build("dcgan", image_size=28, channels=1, width=16)
    >>> model.config.image_size, sorted(model.networks())
    (28, ['D', 'G'])
    """
    if name not in MODELS:
        raise ValueError(f"name must be one of {', '.join(map(repr, MODELS))}; got {name!r}")
    cls = MODELS[name]
    import dataclasses

    known = [f.name for f in dataclasses.fields(cls.config_class)]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"config: {name} has no option(s) {unknown}; its options are {known}")
    cfg = cls.config_class(**config)
    if seed is not None:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(cfg)
    return cls(cfg)
