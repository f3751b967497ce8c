"""Tag sets for tag-conditioned models (GMSDI): free text from a request -> the model's multi-hot vector.

tag_vector(["bass", "Synth Lead"], vocabulary) -> (V,) float tensor with 1 at each tag
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stemlink.errors import InvalidInput

if TYPE_CHECKING:
    import torch


def normalise_tag(tag: str) -> str:
    """ "Synth Lead" / "synth-lead" -> "synth_lead"."""
    return "_".join(tag.strip().lower().replace("-", " ").split())


def tag_vector(tags: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Tags -> (V,) float multi-hot; an unknown or empty tag is an `InvalidInput` naming the vocabulary."""
    import torch  # here: resolve_tag serves the host, which loads no torch

    known = [normalise_tag(t) for t in vocabulary]
    out = torch.zeros(len(known))
    for tag in tags:
        name = normalise_tag(tag)
        if name not in known:
            raise InvalidInput(f"tag {tag!r} is not in the vocabulary: {', '.join(t.replace('_', ' ') for t in vocabulary)}", field="stems")
        out[known.index(name)] = 1.0
    if not tags:
        raise InvalidInput(f"no tags given; the vocabulary: {', '.join(t.replace('_', ' ') for t in vocabulary)}", field="stems")
    return out


def resolve_tag(text: str, vocabulary: Sequence[str]) -> str:
    """Free text -> the vocabulary tag it names: "Synth Lead" -> "synth_lead", "brass section" ->
    "brass" (the one tag whose words all appear in it); none or several is an `InvalidInput`
    naming the vocabulary."""
    name = normalise_tag(text)
    known = {normalise_tag(t): t for t in vocabulary}
    if name in known:
        return known[name]
    words = set(name.split("_"))
    hits = [t for n, t in known.items() if set(n.split("_")) <= words]
    if len(hits) == 1:
        return hits[0]
    listing = ", ".join(t.replace("_", " ") for t in vocabulary)
    what = f"names several tags ({', '.join(hits)})" if hits else "names no tag"
    raise InvalidInput(f"{text!r} {what}; the vocabulary: {listing}", field="stems")
