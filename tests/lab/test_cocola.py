"""COCOLA network, loss, K-pair accuracy and training loop on tiny debug configurations."""

import argparse

import pytest
import torch

from stemlink.lab.eval.coherence import derangement, k_pair_accuracy, pair_scores
from stemlink.lab.export.cocola import load_cocola
from stemlink.lab.nn.cocola import BilinearSimilarity, build_cocola, contrastive_loss, pair_accuracy
from stemlink.lab.train.cocola import SyntheticPairs, fixed_pairs, load_cocola_preset, main


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny nets run fastest single-threaded, and 2-thread ops thrash on a loaded 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(
    sample_rate=8000, clip_seconds=0.25, n_fft=256, hop_length=64, n_mels=32, backbone="test_efficientnet", dropout=0.0, embed_dim=32
)


def test_similarity_is_bilinear_and_asymmetric():
    torch.manual_seed(0)
    sim = BilinearSimilarity(8)
    with torch.no_grad():
        sim.weight.copy_(torch.randn(8, 8))
    a, b, c = torch.randn(3, 4, 8)
    assert torch.allclose(sim(a, b), torch.einsum("bi,ij,bj->b", a, sim.weight, b), atol=1e-5)
    assert torch.allclose(sim(2 * a + c, b), 2 * sim(a, b) + sim(c, b), atol=1e-4)  # linear in h1
    assert torch.allclose(sim(a, b - 3 * c), sim(a, b) - 3 * sim(a, c), atol=1e-4)  # linear in h2
    assert not torch.allclose(sim(a, b), sim(b, a), atol=1e-3)
    assert torch.allclose(sim.matrix(a, b).diagonal(), sim(a, b), atol=1e-5)
    with torch.no_grad():
        sim.weight.copy_(sim.weight + sim.weight.t())
    assert torch.allclose(sim(a, b), sim(b, a), atol=1e-4)


def test_contrastive_loss_and_accuracy():
    logits = torch.full((4, 4), -5.0).fill_diagonal_(5.0)
    assert float(contrastive_loss(logits)) < 1e-3 and pair_accuracy(logits) == 1.0
    assert float(contrastive_loss(logits.roll(1, dims=1))) > 9.0 and pair_accuracy(logits.roll(1, dims=1)) == 0.0
    assert abs(float(contrastive_loss(torch.zeros(8, 8))) - float(torch.log(torch.tensor(8.0)))) < 1e-6


def test_k_pair_accuracy_counts_groups():
    eye = torch.eye(8)
    assert k_pair_accuracy(eye, eye, eye, 2) == 1.0 and k_pair_accuracy(eye, eye, eye, 8) == 1.0
    # partners swapped inside each group of 2 -> every anchor picks the wrong one
    swapped = eye[[1, 0, 3, 2, 5, 4, 7, 6]]
    assert k_pair_accuracy(eye, swapped, eye, 2) == 0.0
    # groups of 4: the swap keeps 0 correct; a rotation across groups of 2 does not matter for K=2
    assert k_pair_accuracy(eye, eye[[0, 1, 3, 2, 4, 5, 6, 7]], eye, 4) == 0.75
    with pytest.raises(ValueError):
        k_pair_accuracy(eye[:1], eye[:1], eye, 2)
    assert torch.allclose(pair_scores(eye, swapped, 2 * eye), torch.zeros(8))


def test_derangement_has_no_fixed_point():
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 5, 17):
        for _ in range(20):
            p = derangement(n, g)
            assert sorted(p.tolist()) == list(range(n)) and not (p == torch.arange(n)).any()


def test_encoder_shapes_and_bounds():
    net = build_cocola(**TINY).eval()
    h = net.encoder(torch.randn(3, net.config.clip_samples))
    assert h.shape == (3, 32) and h.abs().max() <= 1.0
    assert net(torch.randn(3, 2000), torch.randn(3, 2000)).shape == (3, 3)
    with pytest.raises(ValueError, match="unknown COCOLA model option"):
        build_cocola(backbone_name="x")


def test_loss_decreases_when_positives_share_a_pattern():
    torch.manual_seed(0)
    net = build_cocola(**TINY)
    a, b = fixed_pairs(SyntheticPairs(2000, 8000, size=64, seed=3), 16, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        h = net.encoder(torch.cat([a, b]) + 1e-3 * torch.randn(32, 2000))
        loss = contrastive_loss(net.similarity.matrix(h[:16], h[16:]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:3]) / 3, losses


def _args(tmp_path, **kw):
    base = dict(
        preset="cocola-debug",
        data=None,
        out=str(tmp_path / "run"),
        resume=False,
        max_steps=3,
        max_minutes=None,
        device="cpu",
        seed=0,
        threads=None,
    )
    return argparse.Namespace(**{**base, **kw})


def test_train_resume_and_checkpoint(tmp_path):
    assert main(_args(tmp_path)) == 0
    net, state = load_cocola(tmp_path / "run" / "last.pt")
    assert state["step"] == 3 and state["family"] == "cocola" and "val_acc_k2" in state["metrics"]
    assert main(_args(tmp_path, resume=True, max_steps=5)) == 0
    _, state = load_cocola(tmp_path / "run" / "last.pt")
    assert state["step"] == 5
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resumed from" in log and "validation K=2" in log


def test_preset_errors_name_the_key(tmp_path):
    from stemlink.errors import PresetError

    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nbackbone = 'x'\nwidth = 3\n")
    with pytest.raises(PresetError, match="width"):
        load_cocola_preset(str(bad))
    model, train, data = load_cocola_preset("cocola-cpu")
    assert model["sample_rate"] == 16000 and train.batch_size == 32 and data.max_overlap == 0.5


def test_score_distributions_separate_the_three_kinds():
    from stemlink.lab.eval.coherence import PairEmbeddings, score_distributions

    # 3 tracks x 4 windows 1000 samples apart; the partner of a window is the window itself,
    # so ground truth > same track elsewhere (shares the track vector) > other tracks.
    g = torch.Generator().manual_seed(0)
    track_vec = torch.randn(3, 16, generator=g)
    h, tracks, starts = [], [], []
    for t in range(3):
        for w in range(4):
            h.append(track_vec[t] + 0.5 * torch.randn(16, generator=g))
            tracks.append(f"t{t}")
            starts.append(1000 * w)
    h = torch.stack(h)
    pairs = PairEmbeddings(h, h.clone(), tracks, starts)
    truth, other, same = score_distributions(pairs, torch.eye(16), length=1000)
    assert (truth.count, other.count, same.count) == (12, 12, 12)
    assert truth.mean > same.mean > other.mean
    # windows closer than one length apart are never counted as "different time"
    assert len(score_distributions(PairEmbeddings(h, h, tracks, [0] * 12), torch.eye(16), length=1000)) == 2


def test_split_union_indexes_every_part():
    from stemlink.lab.eval.coherence import SplitUnion

    class Part:
        def __init__(self, name, n):
            self.name, self.n = name, n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return (self.name, i)

        def window(self, i):
            return (self.name, i, ())

    union = SplitUnion([Part("a", 2), Part("b", 0), Part("c", 3)])
    assert len(union) == 5
    assert [union[i] for i in range(5)] == [("a", 0), ("a", 1), ("c", 0), ("c", 1), ("c", 2)]
    assert union.window(4) == ("c", 2, ())
