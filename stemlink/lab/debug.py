"""Tiny debug exports of the shipped model families, built in code (no checkpoint).

    build_debug_exports(tmp / "exports")   # -> the folder, with manifest.json

writes a random-init MSDM denoiser (family "msdm", tasks separate/accompany/generate, stems
bass/drums/guitar/piano, 8 kHz), a random-init COCOLA encoder (family "cocola", task score,
8 kHz) and a random-init band-split mask separator (family "bandsplit", tasks
separate/extract/remove, 8 kHz), exported and registered exactly like the trained ones, under
the shipped names (`msdm-small`, `cocola-small`, `bandsplit-small` by default) so the shipped
presets run unchanged. Their audio is
meaningless: they exist so `stemlink demo`, `stemlink bench` and their tests exercise the
whole path (registry, apply layer, bridge, host, report) in seconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

MSDM_DEBUG: dict[str, Any] = dict(
    stems=("bass", "drums", "guitar", "piano"),
    sample_rate=8000,
    window=2048,
    channels=(8, 16),
    factors=(4,),
    blocks=(1, 1),
    attentions=(False, False),
    emb_dim=16,
    heads=2,
)
COCOLA_DEBUG: dict[str, Any] = dict(
    sample_rate=8000, clip_seconds=0.25, n_fft=256, hop_length=64, n_mels=32, backbone="test_efficientnet", dropout=0.0, embed_dim=32
)
BANDSPLIT_DEBUG: dict[str, Any] = dict(
    stems=("bass", "drums", "guitar", "piano"), sample_rate=8000, window=4096, n_fft=256, hop=64, bands=8, dim=16, layers=1, core="conv"
)
CARD = "debug export: random-init weights built by stemlink.lab.debug; outputs are not music"


def debug_msdm_network(seed: int = 0):
    """(denoiser module, MSDMConfig): random init with the zero-init output layers perturbed,
    so the output really depends on the input."""
    import torch

    from stemlink.lab.nn.config import MSDMConfig, build_denoiser

    config = MSDMConfig(**MSDM_DEBUG)
    torch.manual_seed(seed)
    model = build_denoiser(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval(), config


def debug_cocola_network(seed: int = 0):
    """A tiny `CocolaNet` with a non-trivial bilinear W."""
    import torch

    from stemlink.lab.nn.cocola import build_cocola

    torch.manual_seed(seed)
    net = build_cocola(**COCOLA_DEBUG).eval()
    with torch.no_grad():
        net.similarity.weight.add_(0.05 * torch.randn_like(net.similarity.weight))
    return net


def debug_bandsplit_network(seed: int = 0):
    """(mask network, BandSplitConfig): random init (its masks already depend on the input)."""
    import torch

    from stemlink.lab.nn.bandsplit import BandSplitConfig, BandSplitNet

    torch.manual_seed(seed)
    config = BandSplitConfig(**BANDSPLIT_DEBUG)
    return BandSplitNet(config).eval(), config


def build_debug_exports(
    directory: str | Path,
    *,
    formats: Sequence[str] = ("onnx", "torchscript"),
    msdm_name: str = "msdm-small",
    cocola_name: str = "cocola-small",
    bandsplit_name: str | None = "bandsplit-small",
    steps: int = 4,
) -> Path:
    """Export a debug MSDM, a debug COCOLA and (unless `bandsplit_name` is None) a debug band-split
    separator, the default for separate/extract/remove as in the shipped manifest, into
    `directory` (manifest included). Returns it.

    `steps` becomes the MSDM entry's default sampler step count."""
    import torch

    from stemlink.lab.export.cocola import export_cocola
    from stemlink.lab.export.msdm import export_denoiser

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, config = debug_msdm_network()
        export_denoiser(
            model,
            config,
            directory,
            name=msdm_name,
            formats=tuple(formats),
            card=CARD,
            defaults={"steps": steps, "corrector_steps": 0},
            default_for=("separate", "accompany", "generate"),
        )
        export_cocola(debug_cocola_network(), directory, name=cocola_name, formats=tuple(formats), card=CARD, tolerance=1e-3)
        if bandsplit_name is not None:
            from stemlink.lab.export.bandsplit import export_network_of

            net, bs_config = debug_bandsplit_network()
            export_network_of(
                net,
                bs_config,
                directory,
                name=bandsplit_name,
                formats=tuple(formats),
                card=CARD,
                default_for=("separate", "extract", "remove"),
            )
    finally:
        torch.set_num_threads(threads)
    return directory


def save_debug_checkpoints(
    directory: str | Path, *, msdm_name: str = "msdm-small", cocola_name: str = "cocola-small", bandsplit_name: str = "bandsplit-small"
) -> dict[str, Path]:
    """Training-style checkpoints of the same debug networks `build_debug_exports` exports
    (model name -> path), for anything that runs torch eager from a checkpoint."""
    from stemlink.lab.checkpoints import save_checkpoint

    directory = Path(directory)
    model, config = debug_msdm_network()
    net = debug_cocola_network()
    separator, bs_config = debug_bandsplit_network()
    return {
        bandsplit_name: save_checkpoint(
            directory / "bandsplit-debug.pt",
            family="bandsplit",
            config=bs_config.to_dict(),
            step=0,
            wall_time=0.0,
            model=separator.state_dict(),
            ema=separator.state_dict(),
        ),
        msdm_name: save_checkpoint(
            directory / "msdm-debug.pt",
            family="msdm",
            config=config.to_dict(),
            step=0,
            wall_time=0.0,
            model=model.state_dict(),
            ema=model.state_dict(),
        ),
        cocola_name: save_checkpoint(
            directory / "cocola-debug.pt", family="cocola", config=net.config.to_dict(), step=0, model=net.state_dict()
        ),
    }
