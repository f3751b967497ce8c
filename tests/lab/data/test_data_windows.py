"""Window index, MSDM silence rule, overlap bound, sub-mix pairs, prompts, cache, DataLoader."""

from __future__ import annotations

import itertools
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from stemlink.errors import InvalidInput
from stemlink.lab.data import StemPrompts, StemWindows, SubmixPairs, open_corpus
from stemlink.lab.data.cache import cache_folder, ensure_cached
from tests.lab.data.corpus_builders import RATE, tone


def test_silence_rule_drops_silent_and_single_source_windows(gated_corpus):
    corpus = open_corpus(gated_corpus)
    kept = StemWindows(corpus, "train", sample_rate=RATE, length=RATE, max_overlap=0.5, jitter=False)
    every = StemWindows(corpus, "train", sample_rate=RATE, length=RATE, max_overlap=0.5, jitter=False, silence_rule=False)
    assert kept.hop == 4032  # ceil(0.5 * 8000 / 64) * 64
    assert [every.window(i)[1] for i in range(len(every))] == [0, 4032, 8064, 12096, 16128, 20160]
    # bass+drums sound in 0-2 s, piano alone in 2-3 s, nothing in 3-4 s
    assert [kept.window(i)[1] for i in range(len(kept))] == [0, 4032, 8064, 12096]
    assert kept.window(3)[2] == ("bass", "drums", "piano")
    assert every.window(4)[2] == ("piano",)


def test_window_content_and_missing_stem_is_zero(gated_corpus):
    w = StemWindows(open_corpus(gated_corpus), "train", sample_rate=RATE, length=RATE, jitter=False)
    x = w[1]
    assert x.shape == (4, RATE) and x.dtype == torch.float32
    start = w.window(1)[1]
    expected_bass = tone(4, 55)[0, start : start + RATE]
    assert np.abs(x[0].numpy() - expected_bass).max() < 1e-6
    assert torch.count_nonzero(x[2]) == 0  # no guitar in this track


def test_stereo_and_resampled_windows(gated_corpus):
    corpus = open_corpus(gated_corpus)
    w = StemWindows(corpus, "valid", sample_rate=16000, length=16000, mono=False, jitter=False)
    x = w[0]
    assert x.shape == (4, 2, 16000)
    rms = x[0, 0, 1000:15000].pow(2).mean().sqrt().item()
    assert abs(rms - 0.2 / np.sqrt(2)) < 0.005  # resampling keeps the level of a 55 Hz tone


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_windows_never_overlap_more_than_ratio(gated_corpus, overlap):
    w = StemWindows(open_corpus(gated_corpus), "valid", sample_rate=RATE, length=3000, max_overlap=overlap, seed=3)
    for epoch in range(3):
        w.set_epoch(epoch)
        starts = sorted(w.window(i)[1] for i in range(len(w)))
        assert len(starts) >= 1
        for a, b in itertools.pairwise(starts):
            assert 3000 - (b - a) <= overlap * 3000
        assert starts[-1] + 3000 <= 4 * RATE


def test_epoch_jitter_is_seeded(gated_corpus):
    corpus = open_corpus(gated_corpus)
    a = StemWindows(corpus, "valid", sample_rate=RATE, length=3000, seed=1)
    b = StemWindows(corpus, "valid", sample_rate=RATE, length=3000, seed=1)
    starts = lambda d: [d.window(i)[1] for i in range(len(d))]  # noqa: E731
    assert starts(a) == starts(b)
    seen = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        seen.add(tuple(starts(a)))
    assert len(seen) > 1


def test_submix_pairs_are_disjoint_nonempty_sums(gated_corpus):
    corpus = open_corpus(gated_corpus)
    pairs = SubmixPairs(corpus, "valid", sample_rate=RATE, length=RATE, jitter=False)
    stems = StemWindows(corpus, "valid", stems=("bass", "drums", "guitar", "piano"), sample_rate=RATE, length=RATE, jitter=False)
    order = ("bass", "drums", "guitar", "piano")
    sizes = set()
    for i in range(len(pairs)):
        first, second = pairs.subsets(i)
        assert first and second and not set(first) & set(second)
        sizes.add((len(first), len(second)))
        a, b = pairs[i]
        x = stems[i]
        assert torch.allclose(a, sum(x[order.index(c)] for c in first), atol=1e-6)
        assert torch.allclose(b, sum(x[order.index(c)] for c in second), atol=1e-6)
    assert len(sizes) > 1  # not always single stems


def test_submix_pairs_need_two_sounding_stems(gated_corpus):
    pairs = SubmixPairs(open_corpus(gated_corpus), "train", sample_rate=RATE, length=RATE, jitter=False)
    for i in range(len(pairs)):
        assert len(pairs.window(i)[2]) >= 2


def test_prompts(gated_corpus):
    prompts = StemPrompts(open_corpus(gated_corpus), "valid", sample_rate=RATE, length=RATE, jitter=False)
    for i in range(len(prompts)):
        item = prompts[i]
        ins = [s for s in item["input_stems"].split(",") if s]
        outs = item["output_stems"].split(",")
        assert outs and not set(ins) & set(outs)
        assert item["output"].shape == (RATE,)
        assert item["prompt"].startswith("in: ") and f"{outs[0]} tag" in item["output_tags"]
        if not ins:
            assert torch.count_nonzero(item["input"]) == 0
    assert len(prompts) > 0


def test_dataloader_workers_match_direct_indexing(gated_corpus):
    pairs = SubmixPairs(open_corpus(gated_corpus), "valid", sample_rate=RATE, length=2000, seed=5)
    loader = torch.utils.data.DataLoader(pairs, batch_size=len(pairs), num_workers=2, shuffle=False)
    a, b = next(iter(loader))
    for i in range(len(pairs)):
        x, y = pairs[i]
        assert torch.equal(a[i], x) and torch.equal(b[i], y)


def _build(args):
    root, rate = args
    corpus = open_corpus(root)
    ensure_cached(corpus, corpus.tracks(), rate, True, verbose=False)
    return sorted(p.name for p in cache_folder(corpus, rate, True).iterdir())


def test_cache_built_concurrently_is_complete(gated_corpus):
    # concurrent.futures, not multiprocessing.Pool: a worker that cannot start fails the test at once
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        a, b = pool.map(_build, [(str(gated_corpus), 11025)] * 2)
    assert a == b and not [n for n in a if n.startswith(".")]  # no temp files left
    w = StemWindows(open_corpus(gated_corpus), "valid", sample_rate=11025, length=11025, jitter=False)
    assert w[0].shape == (4, 11025)


def test_errors_name_the_field(gated_corpus):
    corpus = open_corpus(gated_corpus)
    with pytest.raises(InvalidInput, match="max_overlap"):
        StemWindows(corpus, "train", sample_rate=RATE, length=RATE, max_overlap=1.0)
    with pytest.raises(InvalidInput, match="split"):
        StemWindows(corpus, "test", sample_rate=RATE, length=RATE)
    with pytest.raises(InvalidInput, match="layout"):
        open_corpus(gated_corpus, layout="nope")


def test_cocola_pairs_from_several_corpora(gated_corpus, coco_tree):
    """A COCOLA preset may train on several corpora at once (e.g. songs + chorales)."""
    from stemlink.lab.train.cocola import ConcatPairs, DataConfig, pair_dataset

    one = pair_dataset(DataConfig(root=str(gated_corpus)), "valid", RATE, 4000, seed=0)
    other = pair_dataset(DataConfig(root=str(coco_tree)), "valid", RATE, 4000, seed=101)
    both = pair_dataset(DataConfig(root=(str(gated_corpus), str(coco_tree))), "valid", RATE, 4000, seed=0)
    assert isinstance(both, ConcatPairs) and len(one) > 0 and len(other) > 0
    assert len(both) == len(one) + len(other)
    a, b = both[len(one)]  # first item of the second corpus: its own pair, not the first corpus'
    a2, b2 = other[0]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))
    np.testing.assert_array_equal(np.asarray(b), np.asarray(b2))
    for epoch in range(1, 6):  # a new epoch may change each part's window count
        both.set_epoch(epoch)
        assert all(part.epoch == epoch for part in both.datasets)
        assert len(both) == sum(len(part) for part in both.datasets)
        both[len(both) - 1]  # the last item of the last part is reachable
