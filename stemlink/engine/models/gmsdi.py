"""GMSDI (family "gmsdi", issue 15): one exported tag-conditioned mixture denoiser serving
separate, extract, accompany and generate with any tags of its vocabulary (its `stems`).

    network(x (N, 1, T), sigma (N,), tags (N, V)) -> (N, 1, T)       EDM denoiser over mixtures

The request names the sources: `bind(task, stems, context_stems)` gives the model for one request,
whose `stems` are exactly the tags asked for, so the apply layer and the task runner see an
ordinary model (mono windows at the model rate):
- separate `stems` (default bass, drums, guitar, piano): the GMSDI Separator (eq. 6.16), the
  Extractor run per stem (eq. 6.17; the complement is the other named stems), or their `ensemble`
  (the mean, re-projected so the stems sum to the mix): `params.method`. `likelihood` picks the
  Dirac constraint: "dirac_sym" (default; the residual shared by all sources, stable at any step
  count) or "dirac" (eq. 6.16 as written: the `constrained` stem, default the last named, is the
  mix minus the others; its Euler step diverges with few steps, 10 steps x 4 sources: -8.6 dB
  against -1.7 dB for "dirac_sym" in `bench/gmsdi-eval.jsonl`);
- extract `stems`: the Extractor per stem against the mix's other tags (`context_stems`, default
  the rest of bass/drums/guitar/piano), the residual is the mix minus them;
- accompany `stems` given `context_stems` (the tags of the region): partial generation (eq. 6.15,
  `alpha`, `beta`, `gamma_x`, `gamma_y`);
- generate `stems`: total generation (eq. 6.13, `gamma_x`, `gamma_y`).
`scale` is the embedding scale w; `negative` prompts each generated or separated stem with the
other named stems as its negative prompt (the paper's remedy for silent single-stem prompts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from stemlink.contract import MAX_STEPS
from stemlink.engine.models.base import Accompanist, EngineModel, Generator, ModelSpec, ProgressCallback, Separator
from stemlink.engine.params import Rule, parse_typed, task_defaults
from stemlink.engine.sampling import karras_sigmas, sample_dirac
from stemlink.engine.sampling.gmsdi import sample_gmsdi_generate, sample_gmsdi_partial, tagged_denoiser
from stemlink.engine.tags import tag_vector
from stemlink.errors import InvalidInput

GMSDI_TASKS = ("separate", "extract", "accompany", "generate")
DEFAULT_SOURCES = ("bass", "drums", "guitar", "piano")
METHODS = ("separator", "extractor", "ensemble")
LIKELIHOODS = ("dirac_sym", "dirac")
REST = "rest"  # a bound extract model's last stem: the mix minus the extracted ones


@dataclass(frozen=True)
class GMSDIParams:
    steps: int = 50
    scale: float = 3.0  # embedding scale w (classifier-free guidance); 1 = the conditional model alone
    method: str = "separator"
    likelihood: str = "dirac_sym"  # the separators' Dirac constraint: "dirac_sym" (no designated stem) or "dirac"
    constrained: str = ""  # the separator's constrained stem ("" = the last named)
    negative: bool = False
    gamma_x: float = 0.0  # 0 = the task's default (generate: inf, accompany: 1)
    gamma_y: float = 0.0
    alpha: float = 1.0
    beta: float = 1.0
    sigma_min: float = 1e-4
    sigma_max: float = 1.0
    rho: float = 7.0
    s_churn: float = 0.0


def _num(lo: float, hi: float) -> Rule:
    return (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi,
        f"a number in {lo}..{hi}",
    )


RULES: dict[str, Rule] = {
    "steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_STEPS, f"an integer in 1..{MAX_STEPS}"),
    "scale": _num(0, 30),
    "method": (lambda v: v in METHODS, "one of " + ", ".join(METHODS)),
    "likelihood": (lambda v: v in LIKELIHOODS, "one of " + ", ".join(LIKELIHOODS)),
    "constrained": (lambda v: isinstance(v, str), "a stem name"),
    "negative": (lambda v: isinstance(v, bool), "true or false"),
    "gamma_x": _num(0, 1e6),
    "gamma_y": _num(0, 1e6),
    "alpha": _num(-10, 10),
    "beta": _num(-10, 10),
    "sigma_min": _num(1e-6, 10),
    "sigma_max": _num(1e-5, 100),
    "rho": _num(0.1, 100),
    "s_churn": _num(0, 1000),
}


def parse_gmsdi_params(values: Mapping[str, Any], *, model: str = "gmsdi") -> GMSDIParams:
    """Request params (or a manifest's defaults for one task) -> GMSDIParams, or InvalidInput."""
    p = parse_typed(GMSDIParams, RULES, values, model=model)
    if p.sigma_min >= p.sigma_max:
        raise InvalidInput(f"model {model!r}: params.sigma_min must be below sigma_max", field="params.sigma_min")
    return p


class GMSDIModel(EngineModel, Separator, Accompanist, Generator):
    samples = True

    def __init__(self, spec: ModelSpec, network: Callable[..., torch.Tensor]):
        super().__init__(spec)
        self.network = network
        self.vocabulary = tuple(spec.stems)
        self.task = ""  # set on a bound model
        self.sources: tuple[str, ...] = ()
        self.context: tuple[str, ...] = ()

    @classmethod
    def conditions_for(cls, spec: ModelSpec) -> tuple[str, ...]:
        return ("context_stems", "tags")

    def bind(self, task: str, stems: Sequence[str], context_stems: Sequence[str] = ()) -> GMSDIModel:
        """The model for one request: `stems` become its stems (the sources it returns)."""
        if task in ("separate",) and not stems:
            stems = DEFAULT_SOURCES
        if not stems:
            raise InvalidInput(f"GMSDI {task} needs the tags in `stems`; the vocabulary: {', '.join(self.vocabulary)}", field="stems")
        for s in (*stems, *context_stems):
            tag_vector([s], self.vocabulary)  # names the vocabulary for an unknown tag
        names = (*stems, REST) if task == "extract" else tuple(stems)  # extract: the stems and what is left of the mix
        bound = GMSDIModel(replace(self.spec, stems=names), self.network)
        bound.vocabulary, bound.task, bound.sources, bound.context = self.vocabulary, task, tuple(stems), tuple(context_stems)
        return bound

    def parse_params(self, task: str, params: Mapping[str, Any]) -> GMSDIParams:
        if task not in self.tasks:
            raise InvalidInput(f"model {self.name!r} does not serve task {task!r}; tasks: {', '.join(self.tasks)}", field="task")
        return parse_gmsdi_params({**task_defaults(self.spec.defaults, task, GMSDI_TASKS), **dict(params or {})}, model=self.name)

    def _params(self, task: str, params: Any) -> GMSDIParams:
        return params if isinstance(params, GMSDIParams) else self.parse_params(task, params or {})

    def _net(self, x: torch.Tensor, sigma: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        return self.network(x.float().contiguous(), sigma.float().contiguous(), tags.float().contiguous())

    def _tags(self, sets: Sequence[Sequence[str]]) -> torch.Tensor:
        return torch.stack([tag_vector(list(s), self.vocabulary) for s in sets])

    def _negatives(self, sets: Sequence[Sequence[str]], on: bool) -> torch.Tensor | None:
        """Each set's negative prompt: the other named sources (their union), when `negative`."""
        if not on:
            return None
        rows = []
        for s in sets:
            others = [t for t in self.sources if t not in s]
            rows.append(tag_vector(others, self.vocabulary) if others else torch.zeros(len(self.vocabulary)))
        return torch.stack(rows)

    def _sigmas(self, p: GMSDIParams) -> torch.Tensor:
        return karras_sigmas(p.steps, p.sigma_min, p.sigma_max, p.rho)

    def _dirac(self, mix: torch.Tensor, sets: list[list[str]], p: GMSDIParams, generator: torch.Generator, callback) -> torch.Tensor:
        den = tagged_denoiser(self._net, self._tags(sets), scale=p.scale, negative=self._negatives(sets, p.negative))
        sigmas = self._sigmas(p)
        x = torch.randn(mix.shape[0], len(sets), mix.shape[-1], generator=generator) * sigmas[0]
        return sample_dirac(
            den, x, sigmas, mixture=mix.float(), symmetric=p.likelihood == "dirac_sym",
            generator=generator, callback=callback, s_churn=p.s_churn, corrector_steps=0,
        )  # fmt: skip

    def _extract(self, mix: torch.Tensor, stem: str, others: Sequence[str], p: GMSDIParams, generator, callback) -> torch.Tensor:
        """(B, T) -> (B, T): the stem by the Extractor, its complement under the other tags."""
        complement = [t for t in others if t != stem] or [t for t in DEFAULT_SOURCES if t != stem]
        return self._dirac(mix, [[stem], complement], p, generator, callback)[:, 0]

    def separate(self, mix: torch.Tensor, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, T) -> (B, S, T) for the bound sources; they sum to the mix (Dirac)."""
        if self.task == "extract":
            return self._extract_all(mix, params, generator, callback)
        p = self._params("separate", params)
        order = list(self.sources)
        constrained = p.constrained or order[-1]
        if constrained not in order:
            raise InvalidInput(f"params.constrained {constrained!r} is not one of the stems {order}", field="params.constrained")
        order.remove(constrained)
        order.append(constrained)
        if p.method == "separator":
            out = self._dirac(mix, [[s] for s in order], p, generator, callback)
            return out[:, [order.index(s) for s in self.sources]]
        extracted = torch.stack([self._extract(mix, s, self.sources, p, generator, callback) for s in self.sources], dim=1)
        if p.method == "ensemble":
            sep = self._dirac(mix, [[s] for s in order], p, generator, callback)[:, [order.index(s) for s in self.sources]]
            extracted = 0.5 * (extracted + sep)
        return extracted + (mix.float()[:, None] - extracted.sum(dim=1, keepdim=True)) / len(self.sources)  # sum to the mix

    def _extract_all(self, mix: torch.Tensor, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """(B, T) -> (B, S + 1, T): each bound stem by the Extractor against the mix's other tags
        (`context_stems`, default the rest of bass/drums/guitar/piano), then the mix minus them."""
        p = self._params("extract", params)
        others = list(self.context) or [t for t in DEFAULT_SOURCES if t not in self.sources]
        stems = torch.stack(
            [self._extract(mix, s, [*others, *[o for o in self.sources if o != s]], p, generator, callback) for s in self.sources], dim=1
        )
        return torch.cat([stems, mix.float()[:, None] - stems.sum(dim=1, keepdim=True)], dim=1)

    def accompany(self, context, *, context_stems, params, generator, callback) -> torch.Tensor:
        """(B, T) context holding `context_stems` -> (B, S, T): the bound stems (partial generation)."""
        p = self._params("accompany", params)
        sets = [[s] for s in self.sources] + [[*self.sources, *context_stems]]
        den = tagged_denoiser(
            self._net, self._tags(sets), scale=p.scale, negative=self._negatives(sets[:-1], p.negative) if p.negative else None
        )
        sigmas = self._sigmas(p)
        x = torch.randn(context.shape[0], len(sets), context.shape[-1], generator=generator) * sigmas[0]
        out = sample_gmsdi_partial(
            den, x, sigmas, context=context.float(), alpha=p.alpha, beta=p.beta, gamma_x=p.gamma_x or 1.0, gamma_y=p.gamma_y or 1.0,
            generator=generator, callback=callback, s_churn=p.s_churn,
        )  # fmt: skip
        return out[:, :-1]

    def generate(self, batch: int, *, params: Any, generator: torch.Generator, callback: ProgressCallback) -> torch.Tensor:
        """-> (B, S, window): the bound stems and (dropped) their mixture, generated together."""
        p = self._params("generate", params)
        sets = [[s] for s in self.sources] + [list(self.sources)]
        negative = self._negatives(sets[:-1], p.negative)
        if negative is not None:
            negative = torch.cat([negative, torch.zeros(1, len(self.vocabulary))])
        den = tagged_denoiser(self._net, self._tags(sets), scale=p.scale, negative=negative)
        sigmas = self._sigmas(p)
        x = torch.randn(batch, len(sets), self.window, generator=generator) * sigmas[0]
        out = sample_gmsdi_generate(
            den,
            x,
            sigmas,
            gamma_x=p.gamma_x or math.inf,
            gamma_y=p.gamma_y or math.inf,
            generator=generator,
            callback=callback,
            s_churn=p.s_churn,
        )
        return out[:, :-1]
