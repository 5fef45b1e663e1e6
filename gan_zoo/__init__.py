"""gan_zoo: classic GANs behind one Python API and one training loop.

The models (GAN, DCGAN, cGAN, CycleGAN, StarGAN) and the shared training loop
arrive in their own modules; ``ctinpaint`` trains its networks on the same loop.
"""

__version__ = "0.1.0"
