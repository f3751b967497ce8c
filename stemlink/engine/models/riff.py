"""The Diff-A-Riff family (issue 14): a latent DiT over a stereo codec's latents, served for
`accompany` and `generate` in true stereo.

A manifest entry of family "riff" is the exported EDM denoiser of the DiT,

    network(x (B, D, L), sigma (B,), context (B, D, L), embedding (B, E), has_context (B,), has_embedding (B,)) -> (B, D, L)

and names its codec pair in `config.components` ({"encoder": "NAME.encoder", "decoder": "NAME.decoder"});
the registry loads them first. `config.codec_sha256` pins the encoder the DiT was trained on: an
entry whose codec file changed is refused, since a new codec is a new latent space.

Two kinds of entry share this class (`config.parameterization`): "edm", sampled with the EDM
sampler (`steps` 20-40), and "consistency" (C-DiT, part 5), sampled with multistep consistency
sampling (`steps` 1-5); the manifest's `defaults` carry each kind's steps and guidance.

One window (the apply layer owns windows, crossfades, rates and channels; this model is a
stereo-pair model, so it gets the region folded to stereo and its part stays stereo, and a
continuing one, so windows run in order and each gets the previous window's part over its
overlap, whose latent frames it keeps by inpainting: a long region is one performance):
  accompany: context (B, 2, W) -> encoder -> context latents -> EDM sampling of the part's latents
             with classifier-free guidance (scale `guidance`; the unconditional branch drops the
             context) -> decoder -> (B, 1, 2, W): the one stem "part".
  generate:  the same without a context.
Conditioning (when the entry has the components): a text prompt goes CLAP text tower -> bridge
(CLAP_beta) -> audio embedding; a reference clip goes CLAP audio tower -> audio embedding; the
embedding drives the DiT's AdaLN in every window, and the unconditional branch of classifier-free
guidance drops it with the context. With a context as well, a third branch (context kept,
embedding dropped) guides toward the embedding itself, scaled by `embedding_guidance`: a DiT that
has learned the context far better than the embedding otherwise follows the context and ignores
the prompt. Without either, the embedding is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch

from stemlink.contract import MAX_STEPS
from stemlink.engine.models.base import Accompanist, EngineModel, Generator, ModelSpec, ProgressCallback
from stemlink.engine.models.bridge import BridgeModel
from stemlink.engine.models.clap import ClapEncoderModel
from stemlink.engine.models.codec import CodecModel
from stemlink.engine.params import Rule, parse_typed
from stemlink.engine.sampling import karras_sigmas, sample_consistency, sample_generate, sample_inpaint
from stemlink.engine.sampling.guidance import guided
from stemlink.errors import InvalidInput

RIFF_TASKS = ("accompany", "generate")
STEMS = ("part",)


@dataclass(frozen=True)
class RiffParams:
    """EDM sampler settings; `sigma_min` / `sigma_max` default to the DiT's own (manifest config)."""

    steps: int = 30
    guidance: float = 2.0
    # With a context and a text/reference: + this x (D(ctx, emb) - D(ctx, no emb)), a third guidance
    # branch toward the embedding. 20 measured best (exports/riff-small.md: text R@1 0.04 -> 0.33 on
    # unseen arrangements, 0.17 -> 0.38 on the corpus test split); 0 = two-branch guidance only.
    embedding_guidance: float = 20.0
    sigma_min: float = 0.0  # 0 = the model's
    sigma_max: float = 0.0  # 0 = the model's
    rho: float = 7.0
    s_churn: float = 0.0
    heun: bool = False


def _number(lo: float, hi: float) -> Rule:
    return (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi,
        f"a number in {lo}..{hi}",
    )


RULES: dict[str, Rule] = {
    "steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_STEPS, f"an integer in 1..{MAX_STEPS}"),
    "guidance": _number(0, 20),
    "embedding_guidance": _number(0, 50),
    "sigma_min": _number(0, 10),
    "sigma_max": _number(0, 1000),
    "rho": _number(0.1, 100),
    "s_churn": _number(0, 1000),
    "heun": (lambda v: isinstance(v, bool), "true or false"),
}


M = TypeVar("M")


def _typed(model: EngineModel | None, cls: type[M], role: str) -> M | None:
    if model is not None and not isinstance(model, cls):
        raise ValueError(f"component {role!r} is a {model.spec.family} entry, not a {cls.__name__}")
    return model


class RiffModel(EngineModel, Accompanist, Generator):
    samples = True
    channels = 2  # a stereo-pair model for the apply layer
    continues = True  # windows run in order; each continues the previous one's overlap (apply.stream)

    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor], components: Mapping[str, EngineModel]):
        super().__init__(spec)
        encoder, decoder = components.get("encoder"), components.get("decoder")
        if not isinstance(encoder, CodecModel) or not isinstance(decoder, CodecModel):
            raise ValueError("a riff entry needs config.components with a codec 'encoder' and 'decoder'")
        if encoder.part != "encoder" or decoder.part != "decoder":
            raise ValueError(f"components are a codec {encoder.part} and {decoder.part}, expected the encoder and the decoder")
        pinned = str(spec.config.get("codec_sha256", ""))
        if pinned and encoder.spec.sha256 != pinned:
            raise ValueError(
                f"the DiT was trained on codec encoder {pinned[:12]}..., but {encoder.name!r} is {encoder.spec.sha256[:12]}...; "
                "export a DiT trained on this codec"
            )
        self.latent_dim = int(spec.config["latent_dim"])
        if encoder.latent_dim != self.latent_dim or decoder.latent_dim != self.latent_dim:
            raise ValueError(f"codec latents have {encoder.latent_dim} channels, the DiT {self.latent_dim}")
        if encoder.geometry.sample_rate != spec.sample_rate or encoder.geometry.channels != 2:
            raise ValueError(f"the codec must be stereo at the entry's {spec.sample_rate} Hz")
        self.network, self.encoder, self.decoder = network, encoder, decoder
        self.embed_dim = int(spec.config.get("embed_dim", 0))
        self.clap_audio, self.clap_text = (_typed(components.get(r), ClapEncoderModel, r) for r in ("clap_audio", "clap_text"))
        self.bridge = _typed(components.get("bridge"), BridgeModel, "bridge")
        pinned_clap = str(spec.config.get("clap_sha256", ""))
        if self.clap_audio is not None and pinned_clap and self.clap_audio.spec.sha256 != pinned_clap:
            raise ValueError(f"the DiT was conditioned on CLAP audio encoder {pinned_clap[:12]}..., not {self.clap_audio.name!r}")
        for part in (self.clap_audio, self.clap_text, self.bridge):
            dim = getattr(part, "dim", self.embed_dim)
            if part is not None and dim != self.embed_dim:
                raise ValueError(f"{part.name!r} gives {dim}-d embeddings, the DiT takes {self.embed_dim}")
        self.sigma_range = (float(spec.config["sigma_min"]), float(spec.config["sigma_max"]))
        self.consistency = spec.config.get("parameterization", "edm") == "consistency"

    @classmethod
    def conditions_for(cls, spec: ModelSpec) -> tuple[str, ...]:
        """ "text" with a CLAP text tower and a bridge, "reference" with a CLAP audio tower, for a
        DiT that takes embeddings; never named context stems (the context is the whole region)."""
        parts = spec.config.get("components") or {}
        if not int(spec.config.get("embed_dim", 0)):
            return ()
        return tuple(
            c for c, roles in (("text", ("clap_text", "bridge")), ("reference", ("clap_audio",))) if all(r in parts for r in roles)
        )

    @torch.no_grad()
    def condition(self, *, text: str | None = None, reference=None, sample_rate: int = 0, seed: int = 0) -> torch.Tensor:
        """A text prompt (CLAP text tower -> bridge, seeded) or a reference clip ((C, N) at
        `sample_rate`: resampled, CLAP audio tower) -> the (1, E) audio embedding every window uses."""
        if text is not None:
            if self.clap_text is None or self.bridge is None:
                raise InvalidInput(f"model {self.name!r} has no text conditioning", field="text")
            g = torch.Generator().manual_seed(int(seed) % 2**63)
            return self.bridge.sample(self.clap_text.embed_text([text]), steps=20, generator=g)
        if reference is None or self.clap_audio is None:
            raise InvalidInput(f"model {self.name!r} has no reference conditioning", field="reference")
        from stemlink.audio.resample import resample_array

        audio = resample_array(reference.astype("float32"), sample_rate, self.clap_audio.sample_rate)
        return self.clap_audio.embed_audio(torch.from_numpy(audio)[None])

    def parse_params(self, task: str, params: Mapping[str, Any]) -> RiffParams:
        if task not in self.tasks:
            raise InvalidInput(f"model {self.name!r} does not serve task {task!r}; tasks: {', '.join(self.tasks)}", field="task")
        p = parse_typed(RiffParams, RULES, {**dict(self.spec.defaults), **dict(params or {})}, model=self.name)
        lo, hi = p.sigma_min or self.sigma_range[0], p.sigma_max or self.sigma_range[1]
        if lo >= hi:
            raise InvalidInput(f"model {self.name!r}: params.sigma_min ({lo}) must be below sigma_max ({hi})", field="params.sigma_min")
        return replace(p, sigma_min=lo, sigma_max=hi)

    def _params(self, task: str, params: Any) -> RiffParams:
        return params if isinstance(params, RiffParams) else self.parse_params(task, params or {})

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor, *cond: torch.Tensor) -> torch.Tensor:
        return self.network(x.float().contiguous(), sigma.float().contiguous(), *(c.float().contiguous() for c in cond))

    def _known(self, previous: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The previous window's part over this window's first samples (B, 1, 2, P) -> (known latents
        (B, D, L), mask (1, 1, L)): the latent frames that only see those samples are kept."""
        g = self.encoder.geometry
        audio = torch.zeros(previous.shape[0], 2, frames)
        n = min(previous.shape[-1], frames)
        audio[..., :n] = previous[:, 0, :, :n].float()
        known = self.encoder.encode(audio)
        margin = -(-(g.n_fft // 2) // g.samples_per_latent) + 2  # frames whose STFT and convolutions reach past P
        mask = torch.zeros(1, 1, known.shape[-1], dtype=torch.bool)
        mask[..., : max(0, n // g.samples_per_latent - margin)] = True
        return known, mask

    def _part(
        self,
        context: torch.Tensor | None,
        batch: int,
        frames: int,
        p: RiffParams,
        generator: torch.Generator,
        callback,
        previous: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Latents of `batch` parts for `frames` samples -> (B, 1, 2, frames) audio; with `previous`
        the window's first latent frames are inpainted from it (continuation); `condition` is the
        (1, E) embedding from `condition()` (none: the embedding is dropped)."""
        length = self.encoder.geometry.latent_frames(frames)
        if context is None:
            ctx = torch.zeros(batch, self.latent_dim, length)
            has_context = torch.zeros(batch)
        else:
            ctx = self.encoder.encode(context.float())
            has_context = torch.ones(batch)
        none = torch.zeros(batch)
        if condition is None:
            embedding, has_embedding = torch.zeros(batch, self.embed_dim), none
        else:
            embedding, has_embedding = condition.float().expand(batch, -1), torch.ones(batch)
        conditioned = context is not None or condition is not None
        also = []
        if context is not None and condition is not None and p.embedding_guidance > 0:  # toward the text/reference itself
            also.append(((ctx, embedding, has_context, none), p.embedding_guidance))
        cond = (ctx, embedding, has_context, has_embedding)
        denoiser = guided(self._denoise, cond, (ctx, embedding, none, none), p.guidance if conditioned else 1.0, also)
        known, mask = self._known(previous, frames) if previous is not None else (None, None)
        if self.consistency:  # C-DiT: evaluate f at `steps` levels from sigma_max (the final sigma_min one would be the identity)
            levels = karras_sigmas(p.steps + 1, p.sigma_min, p.sigma_max, p.rho)[: p.steps]
            sigmas = torch.cat([levels, levels.new_zeros(1)])
            x = torch.randn(batch, self.latent_dim, length, generator=generator) * sigmas[0]
            latents = sample_consistency(
                denoiser, x, sigmas, generator=generator, callback=callback, sigma_min=self.sigma_range[0], known=known, mask=mask
            )
        else:
            sigmas = karras_sigmas(p.steps, p.sigma_min, p.sigma_max, p.rho)
            x = torch.randn(batch, self.latent_dim, length, generator=generator) * sigmas[0]
            common: dict[str, Any] = dict(generator=generator, callback=callback, s_churn=p.s_churn, heun=p.heun)
            if known is None or mask is None:
                latents = sample_generate(denoiser, x, sigmas, **common)
            else:
                latents = sample_inpaint(denoiser, x, sigmas, known=known, mask=mask, **common)
        return self.decoder.decode(latents, frames).unsqueeze(1)

    def accompany(self, context, *, context_stems, params, generator, callback, previous=None, condition=None) -> torch.Tensor:
        """(B, 2, W) context at the model rate -> (B, 1, 2, W): the stereo part."""
        if context.dim() != 3 or context.shape[1] != 2:
            raise InvalidInput(f"context must be (B, 2, T) stereo at {self.sample_rate} Hz, got {tuple(context.shape)}", field="context")
        p = self._params("accompany", params)
        return self._part(context, context.shape[0], context.shape[-1], p, generator, callback, previous, condition)

    def generate(
        self, batch: int, *, params: Any, generator: torch.Generator, callback: ProgressCallback, previous=None, condition=None
    ) -> torch.Tensor:
        """-> (B, 1, 2, window): a stereo part with no context (steered by `condition` when given)."""
        return self._part(None, batch, self.window, self._params("generate", params), generator, callback, previous, condition)
