"""Neural network building blocks: backbones (1D U-Net) and diffusion preconditioning wrappers."""
from stemlink.engine.nn.config import MSDMConfig, build_denoiser
from stemlink.engine.nn.edm import EDMDenoiser
from stemlink.engine.nn.unet1d import UNet1D

__all__ = ["EDMDenoiser", "MSDMConfig", "UNet1D", "build_denoiser"]
