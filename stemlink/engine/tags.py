"""Tag sets for tag-conditioned models (GMSDI): a request's tags -> the model's multi-hot vector.

    tag_vector(["bass", "Synth Lead"], vocabulary) -> (V,) float tensor with 1 at each tag

Free text ("brass section") becomes a vocabulary tag on the host: `stemlink.contract.resolve_tag`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stemlink.contract import normalise_tag
from stemlink.errors import InvalidInput


def tag_vector(tags: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Tags -> (V,) float multi-hot; an unknown or empty tag is an `InvalidInput` naming the vocabulary."""
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
