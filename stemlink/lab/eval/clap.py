"""Retrieval with the CLAP pair on unseen tracks (issue 14 part 3).

    items = clap_items("data/mma-ood44", "test", window=220500, sample_rate=44100)
    scores = score_clap(embed_audio, embed_text, items)   # {"text_to_audio_r1": ..., "class_accuracy": ...}

Items: for every track of the split and every class it has, the loudest `window` of that stem
(mono, levelled to -20 dBFS) and its full description (all rendered facts + a brightness word).
Figures:
- text -> audio R@1 / R@10: a stem's description retrieves that very stem window among all of them
  (chance: 1 / N and 10 / N);
- audio -> text R@1;
- class accuracy: zero-shot, each window's nearest class name among the classes present;
- instrument accuracy: the same with the GM instrument names present.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stemlink.lab.data.descriptions import brightness_word, describe, stem_facts

EmbedAudio = Callable[[torch.Tensor], torch.Tensor]  # (B, T) mono -> (B, D) unit norm
EmbedText = Callable[[Sequence[str]], torch.Tensor]  # prompts -> (B, D) unit norm


@dataclass(frozen=True)
class ClapItem:
    track: str
    cls: str
    instrument: str
    audio: np.ndarray  # (window,) float32
    text: str


def clap_items(root: str, split: str, *, window: int, sample_rate: int, limit: int | None = None) -> list[ClapItem]:
    from stemlink.lab.data import open_corpus
    from stemlink.lab.data.cache import ensure_cached

    corpus = open_corpus(root)
    tracks = [t for name in split.split(",") for t in corpus.tracks(name)][:limit]  # "train,valid,test": every split
    rng = np.random.default_rng(0)
    items = []
    for track, cached in zip(tracks, ensure_cached(corpus, tracks, sample_rate, mono=True, verbose=False), strict=True):
        audio = np.load(cached.audio_path, mmap_mode="r")
        for k, cls in enumerate(cached.classes):
            x = np.asarray(audio[k, 0], dtype=np.float64)
            if x.shape[0] < window:
                x = np.pad(x, (0, window - x.shape[0]))
            hop = window // 2
            starts = list(range(0, x.shape[0] - window + 1, hop))
            energy = [float(np.sum(x[s : s + window] ** 2)) for s in starts]
            best = starts[int(np.argmax(energy))]
            w = x[best : best + window]
            rms = float(np.sqrt(np.mean(w**2)))
            if rms < 1e-5:
                continue
            w = (w * (0.1 / rms)).astype(np.float32)
            facts = stem_facts(track, cls)
            text = describe(facts, rng, brightness=brightness_word(w, sample_rate), full=True)
            items.append(ClapItem(track.id, cls, facts.get("instrument", facts["class"]), w, text))
    return items


def _rank(sim: torch.Tensor) -> torch.Tensor:
    """(N, N) similarities, row i's correct column i -> (N,) 0-based rank of the correct one."""
    return (sim > sim.diagonal()[:, None]).sum(dim=1)


def _nearest_label(audio: torch.Tensor, labels: Sequence[str], embed_text: EmbedText) -> list[str]:
    names = sorted(set(labels))
    text = embed_text([n.replace("_", " ") for n in names])
    return [names[i] for i in (audio @ text.t()).argmax(dim=1).tolist()]


@torch.no_grad()
def score_clap(embed_audio: EmbedAudio, embed_text: EmbedText, items: Sequence[ClapItem], batch: int = 16) -> dict[str, float]:
    audio = torch.cat(
        [embed_audio(torch.from_numpy(np.stack([i.audio for i in items[s : s + batch]]))) for s in range(0, len(items), batch)]
    )
    text = embed_text([i.text for i in items])
    sim = text @ audio.t()  # text i vs audio j
    t2a, a2t = _rank(sim), _rank(sim.t())
    n = len(items)
    classes = _nearest_label(audio, [i.cls for i in items], embed_text)
    instruments = _nearest_label(audio, [i.instrument for i in items], embed_text)
    return {
        "items": n,
        "text_to_audio_r1": float((t2a < 1).float().mean()),
        "text_to_audio_r10": float((t2a < 10).float().mean()),
        "audio_to_text_r1": float((a2t < 1).float().mean()),
        "chance_r1": 1.0 / n,
        "chance_r10": min(10.0 / n, 1.0),
        "class_accuracy": float(np.mean([p == i.cls for p, i in zip(classes, items, strict=True)])),
        "class_chance": 1.0 / len({i.cls for i in items}),
        "instrument_accuracy": float(np.mean([p == i.instrument for p, i in zip(instruments, items, strict=True)])),
        "instrument_chance": 1.0 / len({i.instrument for i in items}),
    }


@torch.no_grad()
def score_bridge(
    embed_audio: EmbedAudio, embed_text: EmbedText, bridge: Any, items: Sequence[ClapItem], *, samples: int = 8, seed: int = 0
) -> dict[str, float]:
    """The modality gap, measured: for each class name as a prompt, is the nearest real stem (by
    embedding) of that class, when the prompt's text embedding is used directly, and when the
    bridge turns it into `samples` audio embeddings? Also the mean cosine to the class's real
    audio embeddings (how far each lands from where audio of that class lives)."""
    audio = torch.cat([embed_audio(torch.from_numpy(np.stack([i.audio for i in items[s : s + 16]]))) for s in range(0, len(items), 16)])
    labels = np.array([i.cls for i in items])
    classes = sorted(set(labels))
    text = embed_text([c.replace("_", " ") for c in classes])
    g = torch.Generator().manual_seed(seed)
    bridged = torch.cat([bridge.sample(text[k : k + 1].expand(samples, -1).contiguous(), generator=g) for k in range(len(classes))])
    want = np.repeat(np.arange(len(classes)), samples)

    def nearest_class(queries: torch.Tensor) -> np.ndarray:
        return np.array([classes.index(c) for c in labels[(queries @ audio.t()).argmax(dim=1).numpy()]])

    def cosine_to_class(queries: torch.Tensor, owner: np.ndarray) -> float:
        return float(np.mean([float((queries[i] @ audio[labels == classes[owner[i]]].t()).mean()) for i in range(len(queries))]))

    direct_owner = np.arange(len(classes))
    return {
        "classes": len(classes),
        "text_nn_accuracy": float(np.mean(nearest_class(text) == direct_owner)),
        "bridge_nn_accuracy": float(np.mean(nearest_class(bridged) == want)),
        "text_cosine_to_class": cosine_to_class(text, direct_owner),
        "bridge_cosine_to_class": cosine_to_class(bridged, want),
        "chance": 1.0 / len(classes),
    }
