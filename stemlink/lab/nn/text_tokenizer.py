"""A word-piece tokenizer trained locally with `tokenizers` (no hub), and batch encoding for the text
encoders (CLAP pair; later the GMSDI text side).

    tok = train_tokenizer(descriptions, vocab_size=1000)
    ids, mask = encode(tok, ["warm electric piano, chords"], max_tokens=32)   # (B, N) int64 each
    tok.save(path) / load_tokenizer(path)

Lower-cased, split on whitespace and punctuation, "[CLS] text [SEP]", id 0 = "[PAD]". Words the
vocabulary lacks become pieces, so any prompt encodes (letters of the alphabet are always in it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from stemlink.errors import InvalidInput

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=alphabet, min_frequency=1)
    letters = "".join(alphabet)
    spelled = [letters, letters[::-1]]  # every character also as a word-inner piece ("##x"), so no word is [UNK]
    tok.train_from_iterator([*texts, *spelled], trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))]
    )
    tok.decoder = decoders.WordPiece()
    if tok.token_to_id("[PAD]") != 0:
        raise AssertionError("[PAD] must be token 0")
    return tok


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for unreadable files
        raise InvalidInput(f"{path}: not a tokenizer file ({exc})", field="tokenizer") from exc


def load_tokenizer_json(text: str):
    """A tokenizer from its JSON string (`tok.to_str()`), as model configs carry it."""
    from tokenizers import Tokenizer

    if not text:
        raise InvalidInput("no tokenizer: the config carries none (train the model first)", field="tokenizer")
    return Tokenizer.from_str(text)


def encode(tokenizer, texts: Sequence[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts -> (ids, mask), (B, N) int64, N = the longest encoding (at most `max_tokens`)."""
    rows = [tokenizer.encode(t).ids[:max_tokens] for t in texts]
    n = max((len(r) for r in rows), default=1)
    ids = torch.zeros(len(rows), n, dtype=torch.int64)
    mask = torch.zeros(len(rows), n, dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        mask[i, : len(r)] = 1
    return ids, mask
