"""CLAP pair (issue 14 part 3) on debug configs: descriptions say what the renderer knows, the
tokenizer encodes any prompt, training carries its tokenizer through resume, and the export pair
embeds through the registry with parity."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from stemlink.lab.data.descriptions import brightness_word, describe, register_word
from stemlink.lab.nn.text_tokenizer import encode, load_tokenizer_json, train_tokenizer


def test_descriptions_always_name_the_instrument_and_follow_the_facts():
    facts = {"class": "bass", "instrument": "fretless bass", "figure": "walking", "register": "low register", "style": "jazz"}
    rng = np.random.default_rng(0)
    for _ in range(50):
        words = describe(facts, rng, brightness="dark").split(", ")
        assert any(w.endswith("bass") for w in words)
        assert set(w.removeprefix("dark ") for w in words) <= set(facts.values())
    assert describe(facts, rng, brightness="warm", full=True) == "warm fretless bass, bass, walking, low register, jazz"
    assert register_word(40) == "low" and register_word(60) == "middle" and register_word(80) == "high"
    t = np.arange(44100) / 44100
    assert brightness_word(np.sin(2 * np.pi * 100 * t), 44100) == "dark"
    assert brightness_word(np.sin(2 * np.pi * 6000 * t), 44100) == "bright"
    assert brightness_word(np.zeros(100), 44100) is None


def test_tokenizer_encodes_unseen_words_without_unknowns():
    tok = train_tokenizer(["warm electric piano, chords", "dark fretless bass, walking"] * 3, vocab_size=200)
    ids, mask = encode(tok, ["zither, glockenspiel", "piano"], max_tokens=40)
    assert ids.shape == mask.shape and (ids[mask.bool()] != tok.token_to_id("[UNK]")).all()
    assert mask[1].sum() < mask[0].sum() and ids[1, mask[1].sum() :].eq(0).all()  # padded with [PAD] = 0
    assert load_tokenizer_json(tok.to_str()).encode("piano").ids == tok.encode("piano").ids


def _args(out, **kw) -> argparse.Namespace:
    base = dict(preset="clap-debug", data=None, out=str(out), resume=False, init=None, max_steps=3, max_minutes=None, device="cpu", seed=0)
    return argparse.Namespace(**{**base, "threads": 1, **kw})


def test_clap_trains_resumes_with_its_tokenizer_and_exports(tmp_path):
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.checkpoints import load_checkpoint
    from stemlink.lab.export.clap import export_clap
    from stemlink.lab.train.clap import train

    train(_args(tmp_path / "run"))
    first = load_checkpoint(tmp_path / "run" / "last.pt", family="clap")["config"]["tokenizer"]
    train(_args(tmp_path / "run", resume=True, max_steps=5))
    state = load_checkpoint(tmp_path / "run" / "last.pt", family="clap")
    assert state["step"] == 5 and state["config"]["tokenizer"] == first and first
    results = export_clap(tmp_path / "run" / "last.pt", tmp_path / "exports", name="clap-test", formats=("onnx", "torchscript"))
    assert all(p <= 1e-4 for r in results.values() for p in r.parity.values())
    registry = ModelRegistry(tmp_path / "exports", device="cpu", threads=1)
    audio_enc, text_enc = registry.get("clap-test.audio", "onnx"), registry.get("clap-test.text", "torchscript")
    long = torch.randn(2, 2, 20_000) * 0.1  # stereo, 2.5 windows at 8 kHz: embedded window by window, averaged
    emb = audio_enc.embed_audio(long)
    assert emb.shape == (2, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    text = text_enc.embed_text(["low sine tone", "a zither nobody trained on"])
    assert text.shape == (2, 16) and torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    with pytest.raises(Exception, match="text"):
        text_enc.embed_text([""])


def test_retrieval_scores_on_a_tiny_corpus_of_unseen_tracks(tmp_path):
    from stemlink.lab.eval.clap import clap_items, score_clap
    from stemlink.lab.export.clap import load_clap
    from stemlink.lab.train.clap import train
    from tests.lab.data.corpus_builders import make_stemlink, tone

    plan = {f"t{n}": {"bass": tone(2.0, 60.0 + 5 * n), "piano": tone(2.0, 500.0 + 40 * n)} for n in range(3)}
    plan["t2"]["piano"][:] = 0  # a silent stem is no item
    root = make_stemlink(tmp_path / "corpus", plan, {t: "test" for t in plan})
    items = clap_items(str(root), "test", window=8000, sample_rate=8000)
    assert len(items) == 5 and {i.cls for i in items} == {"bass", "piano"} and all(i.audio.shape == (8000,) for i in items)
    train(_args(tmp_path / "run", max_steps=2))
    pair, config, _ = load_clap(tmp_path / "run" / "last.pt")
    tok = load_tokenizer_json(config.tokenizer)
    scores = score_clap(pair.embed_audio, lambda texts: pair.embed_text(*encode(tok, list(texts), 16)), items)
    assert scores["items"] == 5 and scores["chance_r1"] == pytest.approx(0.2) and scores["class_chance"] == pytest.approx(0.5)
    assert all(0.0 <= scores[k] <= 1.0 for k in ("text_to_audio_r1", "text_to_audio_r10", "class_accuracy", "instrument_accuracy"))
    assert scores["text_to_audio_r10"] == 1.0  # 5 items: the right one is always in the top 10


def test_bridge_trains_on_pairs_of_an_exported_clap_and_samples_unit_embeddings(tmp_path):
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.export.bridge import export_bridge
    from stemlink.lab.export.clap import export_clap
    from stemlink.lab.train.bridge import train as train_bridge
    from stemlink.lab.train.clap import train
    from stemlink.paths import presets_dir

    train(_args(tmp_path / "clap", max_steps=2))
    export_clap(tmp_path / "clap" / "last.pt", tmp_path / "exports", name="clap-debug")
    text = (presets_dir() / "train" / "bridge-debug.toml").read_text()
    preset = tmp_path / "bridge-test.toml"
    preset.write_text(text.replace('name = "clap-debug"', f'name = "clap-debug"\nexports = "{tmp_path / "exports"}"'))
    args = _args(tmp_path / "bridge", preset=str(preset), max_steps=3)
    train_bridge(args)
    assert list((tmp_path / "bridge").glob("pairs-*.pt"))  # the pairs are made once per CLAP pair
    train_bridge(_args(tmp_path / "bridge", preset=str(preset), max_steps=4, resume=True))
    result = export_bridge(tmp_path / "bridge" / "last.pt", tmp_path / "exports", name="bridge-test", formats=("onnx", "torchscript"))
    assert max(result.parity.values()) <= 1e-4
    registry = ModelRegistry(tmp_path / "exports", device="cpu", threads=1)
    bridge, clap_text = registry.get("bridge-test", "onnx"), registry.get("clap-debug.text")
    out = bridge.sample(clap_text.embed_text(["low sine tone", "noise burst"]), steps=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 16) and torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    free = bridge.sample(None, batch=3, steps=4)
    assert free.shape == (3, 16)
    from stemlink.lab.eval.clap import ClapItem, score_bridge

    audio_enc = registry.get("clap-debug.audio")
    t = np.arange(8000) / 8000
    items = [
        ClapItem("t", cls, cls, (0.1 * np.sin(2 * np.pi * f * t)).astype(np.float32), cls)
        for cls, f in (("low", 80), ("high", 1200), ("low", 90))
    ]
    gap = score_bridge(audio_enc.embed_audio, clap_text.embed_text, bridge, items, samples=2)
    assert gap["classes"] == 2 and gap["chance"] == 0.5 and all(0 <= gap[k] <= 1 for k in ("text_nn_accuracy", "bridge_nn_accuracy"))
