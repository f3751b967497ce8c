"""MSDM (Multi-Source Diffusion Model) served from an exported denoiser.

The exported network is the preconditioned denoiser D(x (B, N, T), sigma (B,)) -> (B, N, T)
over the N stems of the manifest entry (`stemlink.lab.nn.edm`); the diffusion loops are
engine code (`stemlink.engine.sampling`). Tasks, on mono windows of `window` samples:

- separate:  Dirac likelihood over all stems (`likelihood` "dirac": Algorithm 3 of the paper;
  "dirac_sym": the same constraint shared by all stems, stable with few steps) or the
  Gaussian likelihood; with Dirac the stems sum to the mix.
- accompany: one context stem -> inpainting (the paper's partial generation); several
  context stems -> their SUM is the context, so Dirac on that subset while the other
  stems are generated freely.
- generate:  total generation.

Silence: MSDM tends to generate silent stems on partial generation (paper, sec. 6.4). With
`best_of = K > 1` the sampler draws K candidates per window in one batch and keeps the one
whose generated stems have the highest RMS (the paper's "highest L2 norm of 100 samples").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stemlink.contract import MAX_STEPS
from stemlink.engine.models.base import Accompanist, EngineModel, Generator, ModelSpec, ProgressCallback, Separator
from stemlink.engine.params import Rule, parse_typed, task_defaults
from stemlink.engine.sampling import karras_sigmas, sample_dirac, sample_gaussian, sample_generate, sample_inpaint
from stemlink.errors import InvalidInput

LIKELIHOODS = ("dirac", "dirac_sym", "gaussian")


@dataclass(frozen=True)
class MSDMParams:
    """Sampler parameters. Class defaults are the paper's separation setting (150 steps,
    S_churn 20, one correction step, Karras sigma in [1e-4, 1], rho 7); a manifest entry's
    `defaults` (and presets) override them."""

    steps: int = 150
    s_churn: float = 20.0
    corrector_steps: int = 1
    sigma_min: float = 1e-4
    sigma_max: float = 1.0
    rho: float = 7.0
    likelihood: str = "dirac"
    gamma: float = 2.0
    heun: bool = False
    best_of: int = 1


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_RULES: dict[str, Rule] = {
    "steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_STEPS, f"an integer in 1..{MAX_STEPS}"),
    "s_churn": (lambda v: _is_number(v) and 0 <= v <= 1000, "a number in 0..1000"),
    "corrector_steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10, "an integer in 0..10"),
    "sigma_min": (lambda v: _is_number(v) and 0 < v < 10, "a number in (0, 10)"),
    "sigma_max": (lambda v: _is_number(v) and 0 < v <= 100, "a number in (0, 100]"),
    "rho": (lambda v: _is_number(v) and 0 < v <= 100, "a number in (0, 100]"),
    "likelihood": (lambda v: v in LIKELIHOODS, "one of " + ", ".join(LIKELIHOODS)),
    "gamma": (lambda v: _is_number(v) and 0 < v <= 100, "a number in (0, 100]"),
    "heun": (lambda v: isinstance(v, bool), "true or false"),
    "best_of": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64, "an integer in 1..64"),
}


def parse_msdm_params(values: Mapping[str, Any], *, model: str = "msdm") -> MSDMParams:
    """Validate a mapping into `MSDMParams`; errors name the field, the value and what is allowed."""
    params = parse_typed(MSDMParams, _RULES, values, model=model)
    if params.sigma_min >= params.sigma_max:
        raise InvalidInput(
            f"model {model!r}: params.sigma_min ({params.sigma_min}) must be below sigma_max ({params.sigma_max})", field="params.sigma_min"
        )
    return params


MSDM_TASKS = ("separate", "accompany", "generate")  # the tasks an exported MSDM denoiser serves
# A manifest's `defaults` may hold a table per task (`task_defaults`): msdm-small's accompany runs
# without S_churn, which makes its generated parts silent far more often (exports/msdm-small.md).


class MSDMModel(EngineModel, Separator, Accompanist, Generator):
    """MSDM over an exported denoiser `network(x (B,N,T), sigma (B,)) -> (B,N,T)`."""

    samples = True

    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor]):
        super().__init__(spec)
        self.network = network

    def parse_params(self, task: str, params: Mapping[str, Any]) -> MSDMParams:
        if task not in self.tasks:
            raise InvalidInput(f"model {self.name!r} does not serve task {task!r}; tasks: {', '.join(self.tasks)}", field="task")
        return parse_msdm_params({**task_defaults(self.spec.defaults, task, MSDM_TASKS), **dict(params or {})}, model=self.name)

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.network(x.float().contiguous(), sigma.float().contiguous())

    @property
    def hop(self) -> int:
        """The denoiser is fully convolutional: it accepts any length that is a multiple of this."""
        return int(self.spec.config.get("hop", self.window))

    def _start(self, batch: int, length: int, p: MSDMParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        sigmas = karras_sigmas(p.steps, p.sigma_min, p.sigma_max, p.rho)
        x = torch.randn(batch, len(self.stems), length, generator=generator) * sigmas[0]
        return x, sigmas

    def _params(self, task: str, params: Any) -> MSDMParams:
        return params if isinstance(params, MSDMParams) else self.parse_params(task, params or {})

    def _check(self, audio: torch.Tensor, what: str) -> None:
        """The engine passes (B, window); evaluation may pass longer windows (multiples of `hop`)."""
        if audio.dim() != 2 or audio.shape[-1] < 1 or audio.shape[-1] % self.hop:
            raise InvalidInput(
                f"{what} must be (B, T) at {self.sample_rate} Hz with T a multiple of {self.hop} "
                f"(the engine uses T = {self.window}), got {tuple(audio.shape)}",
                field=what,
            )

    def separate(self, mix: torch.Tensor, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, T) mix -> (B, N, T) stems summing to the mix (Dirac: exactly)."""
        self._check(mix, "mix")
        p = self._params("separate", params)
        x, sigmas = self._start(mix.shape[0], mix.shape[-1], p, generator)
        common: dict[str, Any] = dict(
            mixture=mix.float(), generator=generator, callback=callback, s_churn=p.s_churn, corrector_steps=p.corrector_steps, heun=p.heun
        )
        if p.likelihood == "gaussian":
            return sample_gaussian(self._denoise, x, sigmas, gamma=p.gamma, **common)
        return sample_dirac(self._denoise, x, sigmas, symmetric=p.likelihood == "dirac_sym", **common)

    def _stem_indices(self, names: Sequence[str]) -> list[int]:
        unknown = [n for n in names if n not in self.stems]
        if unknown or not names or len(set(names)) != len(names):
            raise InvalidInput(f"context_stems must be distinct names among {list(self.stems)}, got {list(names)}", field="context_stems")
        if len(names) == len(self.stems):
            raise InvalidInput(f"context_stems {list(names)} leave no stem to generate", field="context_stems")
        return [self.stems.index(n) for n in names]

    def _best_of(self, run: Callable[[int], torch.Tensor], batch: int, k: int, free: list[int]) -> torch.Tensor:
        """Run K candidates per item in one batch; keep the one with the loudest free stems."""
        out = run(batch * k)  # (k * B, N, T), candidate-major
        if k == 1:
            return out
        cand = out.reshape(k, batch, *out.shape[1:])
        energy = cand[:, :, free].pow(2).mean(dim=(2, 3))  # (k, B)
        best = energy.argmax(dim=0)
        return cand[best, torch.arange(batch)]

    def accompany(
        self, context: torch.Tensor, *, context_stems: Sequence[str], params: Any, generator: torch.Generator, callback: ProgressCallback
    ) -> torch.Tensor:
        """(B, T) context (sum of `context_stems`) -> (B, N, T); generated stems are those not in context_stems."""
        self._check(context, "context")
        p = self._params("accompany", params)
        idx = self._stem_indices(context_stems)
        free = [i for i in range(len(self.stems)) if i not in idx]
        batch = context.shape[0]

        def run(n: int) -> torch.Tensor:
            x, sigmas = self._start(n, context.shape[-1], p, generator)
            ctx = context.float().repeat(n // batch, 1)
            common: dict[str, Any] = dict(
                generator=generator, callback=callback, s_churn=p.s_churn, corrector_steps=p.corrector_steps, heun=p.heun
            )
            if len(idx) == 1:
                known = torch.zeros_like(x)
                known[:, idx[0]] = ctx
                mask = [i in idx for i in range(len(self.stems))]
                return sample_inpaint(self._denoise, x, sigmas, known=known, mask=mask, **common)
            if p.likelihood == "gaussian":
                return sample_gaussian(self._denoise, x, sigmas, mixture=ctx, subset=idx, gamma=p.gamma, **common)
            return sample_dirac(self._denoise, x, sigmas, mixture=ctx, subset=idx, symmetric=p.likelihood == "dirac_sym", **common)

        return self._best_of(run, batch, p.best_of, free)

    def generate(self, batch: int, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """-> (B, N, T) a coherent set of stems (total generation)."""
        p = self._params("generate", params)

        def run(n: int) -> torch.Tensor:
            x, sigmas = self._start(n, self.window, p, generator)
            return sample_generate(
                self._denoise,
                x,
                sigmas,
                generator=generator,
                callback=callback,
                s_churn=p.s_churn,
                corrector_steps=p.corrector_steps,
                heun=p.heun,
            )

        return self._best_of(run, batch, p.best_of, list(range(len(self.stems))))
