"""Neural network building blocks: backbones (1D U-Net) and diffusion preconditioning wrappers."""

from stemlink.lab.nn.config import MSDMConfig, build_denoiser
from stemlink.lab.nn.edm import EDMDenoiser
from stemlink.lab.nn.unet1d import UNet1D

__all__ = ["EDMDenoiser", "MSDMConfig", "UNet1D", "build_denoiser"]
