"""Latent DiT (issue 14 part 2) on debug configs: the network's contract (zero output when fresh,
conditions that can be dropped, any length), the latent cache (contexts are encodings of the
other stems' sum, levels per frame), EDM training that resumes, and guided sampling."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from stemlink.engine.sampling import karras_sigmas, sample_generate
from stemlink.engine.sampling.guidance import guided
from stemlink.errors import InvalidInput
from stemlink.lab.checkpoints import load_checkpoint
from stemlink.lab.nn.latent_dit import LatentDiT, LatentDiTConfig, build_latent_denoiser
from stemlink.lab.train.dit_data import LatentCache, PairConfig, dit_batches
from stemlink.paths import presets_dir
from tests.lab.data.corpus_builders import make_stemlink, tone

RATE = 8000


def _inputs(cfg: LatentDiTConfig, b: int = 2, n: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, cfg.latent_dim, n, generator=g)
    ctx = torch.randn(b, cfg.latent_dim, n, generator=g)
    emb = torch.randn(b, cfg.embed_dim, generator=g)
    return x, torch.zeros(b), ctx, emb, torch.ones(b), torch.ones(b)


def _perturb(net: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))


def test_fresh_dit_outputs_zero_and_trained_one_sees_every_condition():
    cfg = LatentDiTConfig(latent_dim=4, dim=16, depth=2, heads=2, embed_dim=3, noise_features=8)
    net = LatentDiT(cfg)
    x, c_noise, ctx, emb, on, _ = _inputs(cfg)
    assert net(x, c_noise, ctx, emb, on, on).abs().max() == 0  # AdaLN-Zero: the fresh model is the identity of EDM's skip
    _perturb(net)
    base = net(x, c_noise, ctx, emb, on, on)
    assert base.shape == x.shape
    off = torch.zeros(2)
    assert not torch.allclose(base, net(x, c_noise, ctx * 2, emb, on, on))  # context is read
    assert torch.allclose(net(x, c_noise, ctx, emb, off, on), net(x, c_noise, ctx * 2, emb, off, on))  # ... unless dropped
    assert not torch.allclose(base, net(x, c_noise, ctx, emb * 2, on, on))  # embedding is read
    assert torch.allclose(net(x, c_noise, ctx, emb, on, off), net(x, c_noise, ctx, emb * 2, on, off))
    assert not torch.allclose(base, net(x, c_noise + 1, ctx, emb, on, on))  # noise level is read
    # any length: depthwise conv positions, no fixed window
    x7, _, ctx7, *_ = _inputs(cfg, n=7)
    assert net(x7, c_noise, ctx7, emb, on, on).shape == (2, 4, 7)


def test_dit_config_errors_name_the_field():
    with pytest.raises(InvalidInput, match="divisible by heads"):
        LatentDiTConfig(dim=30, heads=4)
    with pytest.raises(InvalidInput, match="qkv_kernel"):
        LatentDiTConfig(qkv_kernel=2)


def test_guided_denoiser_is_the_cfg_combination():
    cfg = LatentDiTConfig(latent_dim=4, dim=16, depth=1, heads=2, embed_dim=0, noise_features=8)
    den = build_latent_denoiser(cfg)
    _perturb(den)
    x, _, ctx, emb, on, _ = _inputs(cfg)
    off = torch.zeros(2)
    sigma = torch.full((2,), 0.7)
    cond, uncond = (ctx, emb, on, off), (ctx, emb, off, off)
    d_c, d_u = den(x, sigma, *cond), den(x, sigma, *uncond)
    want = d_u + 3.0 * (d_c - d_u)
    assert torch.allclose(guided(den, cond, uncond, 3.0)(x, sigma), want, atol=1e-5)
    assert torch.allclose(guided(den, cond, uncond, 1.0)(x, sigma), d_c)
    ctx_only = (ctx, emb, off, on)  # multi-condition guidance: a third branch with one condition dropped
    d_p = den(x, sigma, *ctx_only)
    assert not torch.allclose(d_p, d_c)
    want_also = d_u + 3.0 * (d_c - d_u) + 2.5 * (d_c - d_p)
    assert torch.allclose(guided(den, cond, uncond, 3.0, [(ctx_only, 2.5)])(x, sigma), want_also, atol=1e-5)
    assert torch.allclose(guided(den, cond, uncond, 1.0, [(ctx_only, 2.5)])(x, sigma), d_c + 2.5 * (d_c - d_p), atol=1e-5)
    assert torch.allclose(guided(den, cond, uncond, 3.0, [(ctx_only, 0.0)])(x, sigma), want, atol=1e-5)  # weight 0: no branch
    sigmas = karras_sigmas(4, cfg.sigma_min, cfg.sigma_max)
    out = sample_generate(guided(den, cond, uncond, 2.0), torch.randn(2, 4, 12) * sigmas[0], sigmas, generator=torch.Generator())
    assert out.shape == (2, 4, 12) and out.abs().max() <= cfg.clamp


def _tiny_corpus(root: Path) -> Path:
    plan, splits = {}, {}
    for n in range(3):
        tid = f"t{n}"
        plan[tid] = {
            "bass": tone(2.0, 55.0 * (n + 1)),
            "piano": tone(2.0, 440.0 + 30 * n),
            "drums": np.random.default_rng(n).normal(0, 0.1, (2, int(2.0 * RATE))).astype(np.float32),
        }
        splits[tid] = "valid" if n == 2 else "train"
    plan["t1"]["piano"][:, : RATE // 2] = 0  # half a second of silence in one stem
    return make_stemlink(root, plan, splits)


@pytest.fixture(scope="module")
def codec_exports(tmp_path_factory) -> Path:
    from stemlink.lab.export.codec import export_codec
    from stemlink.lab.train.codec import train as train_codec

    tmp = tmp_path_factory.mktemp("dit")
    run = tmp / "codec"
    args = dict(preset="codec-debug", data=None, resume=False, init=None, max_minutes=None, device="cpu", seed=0, threads=1)
    train_codec(argparse.Namespace(out=str(run), max_steps=2, **args))
    export_codec(run / "last.pt", tmp / "exports", name="codec-debug")
    return tmp / "exports"


def _encoder(exports: Path):
    from stemlink.lab.train.dit import LatentSource, open_encoder

    return open_encoder(LatentSource(codec="codec-debug", exports=str(exports)), 8)


def test_latent_cache_holds_encodings_of_each_stem_and_of_the_rest(tmp_path, codec_exports):
    from stemlink.lab.data import open_corpus
    from stemlink.lab.data.cache import ensure_cached

    root = _tiny_corpus(tmp_path / "corpus")
    encoder, encoder_id = _encoder(codec_exports)
    spl = encoder.geometry.samples_per_latent
    cache = LatentCache.build(root, "train", encoder.encode, encoder_id, sample_rate=RATE, samples_per_latent=spl, extra_contexts=1)
    assert len(cache.tracks) == 2 and cache.latent_dim == 8
    track = cache.tracks[0]
    k = len(track.classes)
    assert track.classes == ("bass", "drums", "piano")
    assert track.stems.shape[:2] == (3, 8) and track.contexts.shape[1:] == track.stems.shape[1:]
    assert track.level_db.shape == (k + len(track.owner), track.stems.shape[-1])
    assert sorted(set(track.owner.tolist())) == [0, 1, 2]
    audio = np.load(ensure_cached(open_corpus(root), open_corpus(root).tracks("train"), RATE, mono=False)[0].audio_path)
    first_of_piano = int(np.flatnonzero(track.owner == 2)[0])  # the full rest of the mix: bass + drums
    want = encoder.encode(torch.from_numpy(audio[[0, 1]].sum(0, keepdims=True)).float())[0].numpy()
    np.testing.assert_allclose(track.contexts[first_of_piano].astype(np.float32), want, atol=2e-3)
    silent = cache.tracks[1].level_db[2, :8]  # t1's piano is silent for its first half second
    assert (silent < -100).all() and (cache.tracks[1].level_db[2, -8:] > -30).all()
    again = LatentCache.build(root, "train", encoder.encode, encoder_id, sample_rate=RATE, samples_per_latent=spl, extra_contexts=1)
    np.testing.assert_array_equal(again.tracks[0].contexts, track.contexts)  # read back, not re-encoded differently
    target, context, embedding = next(dit_batches(cache, PairConfig(frames=16), batch=3, seed=0))
    assert target.shape == (3, 8, 16) and context.shape == (3, 8, 16) and embedding.shape == (3, 0)
    with pytest.raises(InvalidInput, match="no 16-frame window"):
        next(dit_batches(cache, PairConfig(frames=16, audible_db=10.0), batch=1, seed=0))


def test_dit_trains_resumes_and_names_a_missing_codec(tmp_path, codec_exports):
    from stemlink.lab.train.dit import train as train_dit

    root = _tiny_corpus(tmp_path / "corpus")
    text = (presets_dir() / "train" / "dit-debug.toml").read_text()
    preset = tmp_path / "dit-test.toml"
    preset.write_text(text.replace('codec = "codec-debug"', f'codec = "codec-debug"\nexports = "{codec_exports}"'))
    args = dict(preset=str(preset), data=str(root), init=None, max_minutes=None, device="cpu", seed=0, threads=1)
    train_dit(argparse.Namespace(out=str(tmp_path / "run"), resume=False, max_steps=3, **args))
    train_dit(argparse.Namespace(out=str(tmp_path / "run"), resume=True, max_steps=5, **args))
    state = load_checkpoint(tmp_path / "run" / "last.pt", family="dit")
    assert state["step"] == 5 and np.isfinite(state["metrics"]["valid_loss_ema"])
    missing = tmp_path / "dit-missing.toml"
    missing.write_text(text.replace('codec = "codec-debug"', f'codec = "nope"\nexports = "{codec_exports}"'))
    with pytest.raises(InvalidInput, match="codec 'nope' is not in"):
        train_dit(argparse.Namespace(out=str(tmp_path / "run2"), resume=False, max_steps=1, **{**args, "preset": str(missing)}))


def test_riff_export_serves_stereo_parts_of_exact_length(tmp_path, codec_exports):
    import json
    import shutil

    from stemlink.contract import TaskRequest
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.tasks import run_task
    from stemlink.errors import ModelLoadError
    from stemlink.lab.export.riff import export_riff
    from stemlink.lab.train.dit import train as train_dit

    exports = tmp_path / "exports"
    shutil.copytree(codec_exports, exports)
    root = _tiny_corpus(tmp_path / "corpus")
    text = (presets_dir() / "train" / "dit-debug.toml").read_text()
    preset = tmp_path / "dit-test.toml"
    preset.write_text(text.replace('codec = "codec-debug"', f'codec = "codec-debug"\nexports = "{exports}"'))
    args = dict(preset=str(preset), data=str(root), init=None, max_minutes=None, device="cpu", seed=0, threads=1, resume=False)
    train_dit(argparse.Namespace(out=str(tmp_path / "run"), max_steps=2, **args))
    result = export_riff(tmp_path / "run" / "last.pt", exports, name="riff-test", frames=16)
    assert set(result.parity) == {"onnx", "torchscript"} and max(result.parity.values()) <= 1e-3
    cont = train_dit(argparse.Namespace(out=str(tmp_path / "cont"), max_steps=1, **{**args, "init": str(exports / "riff-test.pt")}))
    assert cont is not None  # a shipped export continues training (its wrapper's key prefix is unwrapped)
    registry = ModelRegistry(exports, device="cpu", threads=1)
    rng = np.random.default_rng(0)
    context = (0.1 * rng.standard_normal((2, 62_401))).astype(np.float32)  # 1.3 s at 48 kHz: three 0.5 s windows at 8 kHz
    for fmt in ("onnx", "torchscript"):
        model = registry.get("riff-test", fmt)
        out = run_task(model, TaskRequest("accompany", 48000, {"context": context}, params={"steps": 3, "guidance": 2.5}, seed=1))
        part = out.stems["part"]
        assert part.shape == (2, 62_401) and np.isfinite(part).all()
        assert not np.allclose(part[0], part[1])  # a stereo part, not dual mono
        mono = run_task(model, TaskRequest("accompany", 48000, {"context": context[:1]}, params={"steps": 3}, seed=1))
        assert mono.stems["part"].shape == (1, 62_401)
        gen = run_task(model, TaskRequest("generate", 44100, {}, params={"steps": 2}, frames=5000, channels=2))
        assert gen.stems["part"].shape == (2, 5000)
    with pytest.raises(InvalidInput, match="params.guidance"):
        registry.get("riff-test").parse_params("accompany", {"guidance": -1})
    with pytest.raises(InvalidInput, match="cannot be steered by a text; it takes neither"):  # no CLAP pair behind this DiT
        run_task(registry.get("riff-test"), TaskRequest("accompany", 48000, {"context": context}, text="piano"))
    # continuation: the latent frames that only see `previous` are kept, whatever the seed
    model = registry.get("riff-test", "torchscript")
    g = torch.Generator().manual_seed(3)
    ctx, prev = 0.1 * torch.randn(1, 2, 4096, generator=g), 0.1 * torch.randn(1, 1, 2, 3072, generator=g)
    a, b = (
        model.accompany(
            ctx, context_stems=(), params={"steps": 3}, generator=torch.Generator().manual_seed(s), callback=None, previous=prev
        )
        for s in (1, 2)
    )
    assert torch.allclose(a[..., :1536], b[..., :1536], atol=1e-5) and not torch.allclose(a[..., -1024:], b[..., -1024:])
    # a 60 s region is one continued performance of exact length
    long = (0.1 * rng.standard_normal((2, 60 * 44100))).astype(np.float32)
    out = run_task(model, TaskRequest("accompany", 44100, {"context": long}, params={"steps": 2}))
    assert out.stems["part"].shape == (2, 60 * 44100) and np.isfinite(out.stems["part"]).all()
    # a codec whose encoder changed is a new latent space: the DiT entry is refused
    manifest = json.loads((exports / "manifest.json").read_text())
    for entry in manifest["models"]:
        if entry["name"] == "riff-test":
            entry["config"]["codec_sha256"] = "0" * 64
    (exports / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="trained on codec encoder 000000000000"):
        ModelRegistry(exports, device="cpu", threads=1).get("riff-test")


def test_consistency_function_is_the_identity_at_sigma_min_and_trains():
    from stemlink.lab.nn.consistency import ConsistencyDenoiser

    cfg = LatentDiTConfig(latent_dim=4, dim=16, depth=1, heads=2, noise_features=8, parameterization="consistency")
    f = build_latent_denoiser(cfg)
    assert isinstance(f, ConsistencyDenoiser)
    _perturb(f)
    x, _, ctx, emb, on, _ = _inputs(cfg)
    cond = (ctx, emb, on, torch.zeros(2))
    with torch.no_grad():
        np.testing.assert_allclose(f.denoise(x, torch.full((2,), cfg.sigma_min), *cond, clamp=False), x, atol=1e-6)  # boundary condition
    assert f.step_size(0.0) == pytest.approx(0.1) and f.step_size(1.0) == pytest.approx(1 / 1280)
    hi, lo = f.levels(256, 0.3, generator=torch.Generator().manual_seed(0))
    assert (lo < hi).all() and lo.min() >= cfg.sigma_min * 0.999 and hi.max() <= cfg.sigma_max * 1.001
    loss = f.loss(x, torch.randn_like(x), 0.5, *cond)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in f.backbone.parameters() if p.requires_grad)


def test_consistency_sampler_returns_an_exact_f_and_holds_known_entries():
    from stemlink.engine.sampling import sample_consistency

    target = torch.randn(2, 3, 10)
    calls = []

    def oracle(x, sigma):
        calls.append(float(sigma[0]))
        return target

    sigmas = torch.tensor([40.0, 2.5, 0.3, 0.0])
    out = sample_consistency(oracle, torch.randn(2, 3, 10) * 40, sigmas, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, target) and calls == pytest.approx([40.0, 2.5, 0.3])
    known, mask = torch.zeros(2, 3, 10), torch.zeros(1, 1, 10, dtype=torch.bool)
    mask[..., :4] = True
    held = sample_consistency(oracle, torch.randn(2, 3, 10), sigmas, known=known, mask=mask)
    assert torch.equal(held[..., :4], known[..., :4]) and torch.equal(held[..., 4:], target[..., 4:])


def test_cdit_trains_exports_and_serves_few_step_parts(tmp_path, codec_exports):
    import shutil

    from stemlink.contract import TaskRequest
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.tasks import run_task
    from stemlink.lab.export.riff import export_riff
    from stemlink.lab.train.dit import train as train_dit

    exports = tmp_path / "exports"
    shutil.copytree(codec_exports, exports)
    root = _tiny_corpus(tmp_path / "corpus")
    text = (presets_dir() / "train" / "dit-debug.toml").read_text()
    text = text.replace('codec = "codec-debug"', f'codec = "codec-debug"\nexports = "{exports}"')
    text = text.replace("noise_features = 16", 'noise_features = 16\nparameterization = "consistency"')
    preset = tmp_path / "cdit-test.toml"
    preset.write_text(text + "\n[objective]\nschedule_steps = 4\n")
    args = dict(preset=str(preset), data=str(root), init=None, max_minutes=None, device="cpu", seed=0, threads=1, resume=False)
    train_dit(argparse.Namespace(out=str(tmp_path / "run"), max_steps=3, **args))
    export_riff(tmp_path / "run" / "last.pt", exports, name="cdit-test", frames=16, formats=("torchscript",))
    model = ModelRegistry(exports, device="cpu", threads=1).get("cdit-test")
    assert model.consistency and model.parse_params("accompany", {}).steps == 5  # the export's defaults
    context = (0.1 * np.random.default_rng(1).standard_normal((2, 9000))).astype(np.float32)
    for n in (1, 2):
        out = run_task(model, TaskRequest("accompany", 8000, {"context": context}, params={"steps": n}))
        assert out.stems["part"].shape == (2, 9000) and np.isfinite(out.stems["part"]).all()


def test_conditioning_embedding_comes_from_another_segment_of_the_target_stem():
    from stemlink.lab.train.dit_data import LatentTrack, _embedding

    segments = np.array([[0, 10], [5, 15], [10, 20], [15, 25]])
    emb = np.arange(2 * 4 * 3, dtype=np.float16).reshape(2, 4, 3)
    audible = np.array([[True, True, True, True], [False, True, False, False]])
    track = LatentTrack("t", ("a", "b"), np.zeros((2, 1, 25)), np.zeros((0, 1, 25)), np.zeros(0), np.zeros((2, 25)), emb, segments, audible)
    rng = np.random.default_rng(0)
    picks = {tuple(_embedding(track, 0, slice(0, 10), rng)) for _ in range(40)}
    assert picks == {tuple(emb[0, 2].astype(np.float32)), tuple(emb[0, 3].astype(np.float32))}  # only segments clear of frames 0..9
    assert tuple(_embedding(track, 1, slice(0, 12), rng)) == tuple(emb[1, 1].astype(np.float32))  # the only audible one, overlapping


@pytest.fixture(scope="module")
def riff_exports(tmp_path_factory, codec_exports) -> Path:
    """codec-debug + clap-debug + bridge-debug + riff-clap (a DiT conditioned on clap-debug embeddings)."""
    import shutil

    from stemlink.lab.export.bridge import export_bridge
    from stemlink.lab.export.clap import export_clap
    from stemlink.lab.export.riff import export_riff
    from stemlink.lab.train.bridge import train as train_bridge
    from stemlink.lab.train.clap import train as train_clap
    from stemlink.lab.train.dit import train as train_dit

    tmp_path = tmp_path_factory.mktemp("riff")
    exports = tmp_path / "exports"
    shutil.copytree(codec_exports, exports)
    clap_args = dict(preset="clap-debug", data=None, resume=False, init=None, max_minutes=None, device="cpu", seed=0, threads=1)
    train_clap(argparse.Namespace(out=str(tmp_path / "clap"), max_steps=2, **clap_args))
    export_clap(tmp_path / "clap" / "last.pt", exports, name="clap-debug")
    root = _tiny_corpus(tmp_path / "corpus")
    text = (presets_dir() / "train" / "dit-debug.toml").read_text()
    preset = tmp_path / "dit-clap.toml"
    preset.write_text(text.replace('codec = "codec-debug"', f'codec = "codec-debug"\nclap = "clap-debug"\nexports = "{exports}"'))
    args = dict(preset=str(preset), data=str(root), init=None, max_minutes=None, device="cpu", seed=0, threads=1, resume=False)
    train_dit(argparse.Namespace(out=str(tmp_path / "run"), max_steps=2, **args))
    state = load_checkpoint(tmp_path / "run" / "last.pt", family="dit")
    assert state["config"]["embed_dim"] == 16 and state["config"]["clap"] == "clap-debug"
    caches = list((root / ".cache").glob("clap-*-train-*/*.npz"))
    assert len(caches) == 2
    with np.load(caches[0]) as f:
        assert f["embeddings"].shape[0] == 3 and f["embeddings"].shape[-1] == 16 and f["segments"].shape == (f["embeddings"].shape[1], 2)
    bridge_preset = tmp_path / "bridge.toml"
    bridge_text = (presets_dir() / "train" / "bridge-debug.toml").read_text()
    bridge_preset.write_text(bridge_text.replace('name = "clap-debug"', f'name = "clap-debug"\nexports = "{exports}"'))
    train_bridge(argparse.Namespace(**{**clap_args, "preset": str(bridge_preset), "out": str(tmp_path / "bridge"), "max_steps": 2}))
    export_bridge(tmp_path / "bridge" / "last.pt", exports, name="bridge-debug")
    export_riff(tmp_path / "run" / "last.pt", exports, name="riff-clap", frames=16, formats=("torchscript",))
    return exports


def test_dit_with_clap_conditioning_serves_text_and_reference(riff_exports):
    from stemlink.contract import TaskRequest
    from stemlink.engine.registry import ModelRegistry
    from stemlink.engine.server.server import model_infos
    from stemlink.engine.tasks import run_task

    registry = ModelRegistry(riff_exports, device="cpu", threads=1)
    model = registry.get("riff-clap")
    assert model.conditions == ("text", "reference")  # the bridge was found for the DiT's CLAP pair

    assert {i.name: i.conditions for i in model_infos(registry)}["riff-clap"] == ("text", "reference")
    rng = np.random.default_rng(2)
    context = (0.1 * rng.standard_normal((2, 6000))).astype(np.float32)
    reference = (0.1 * rng.standard_normal((1, 12_000))).astype(np.float32)  # 0.25 s at 48 kHz is too short; this is 1.5 s at 8 kHz
    plain = run_task(model, TaskRequest("accompany", 8000, {"context": context}, params={"steps": 2}, seed=4)).stems["part"]
    texted = run_task(model, TaskRequest("accompany", 8000, {"context": context}, params={"steps": 2}, seed=4, text="low sine tone"))
    referenced = run_task(model, TaskRequest("accompany", 8000, {"context": context, "reference": reference}, params={"steps": 2}, seed=4))
    assert texted.stems["part"].shape == referenced.stems["part"].shape == plain.shape == (2, 6000)
    assert texted.info["condition"] == {"text": "low sine tone"} and referenced.info["condition"] == {"reference_seconds": 1.5}
    assert not np.allclose(texted.stems["part"], plain) and not np.allclose(referenced.stems["part"], plain)  # the embedding is read
    pushed = run_task(
        model,
        TaskRequest("accompany", 8000, {"context": context}, params={"steps": 2, "embedding_guidance": 3.0}, seed=4, text="low sine tone"),
    ).stems["part"]
    assert pushed.shape == (2, 6000) and not np.allclose(pushed, texted.stems["part"])  # a third branch, toward the text
    same = run_task(model, TaskRequest("accompany", 8000, {"context": context}, params={"steps": 2, "embedding_guidance": 3.0}, seed=4))
    np.testing.assert_array_equal(same.stems["part"], plain)  # nothing to guide toward without a text or reference
    gen = run_task(model, TaskRequest("generate", 8000, {}, params={"steps": 2}, frames=3000, text="noise burst"))
    assert gen.stems["part"].shape == (2, 3000)
    with pytest.raises(InvalidInput, match="not both"):
        run_task(model, TaskRequest("accompany", 8000, {"context": context, "reference": reference}, text="low sine tone"))
    with pytest.raises(InvalidInput, match="style reference must be"):
        run_task(model, TaskRequest("accompany", 8000, {"context": context, "reference": reference[:, :2000]}))
    with pytest.raises(InvalidInput, match="at most 200"):
        run_task(model, TaskRequest("accompany", 8000, {"context": context}, text="x" * 201))


def test_cli_accompany_and_generate_with_text_and_reference(riff_exports, tmp_path, monkeypatch):
    from pedalboard.io import AudioFile

    from stemlink.cli import main

    monkeypatch.setenv("STEMLINK_EXPORTS", str(riff_exports))
    monkeypatch.setenv("STEMLINK_ENGINE", "embedded")
    rng = np.random.default_rng(5)
    region, ref = tmp_path / "band.wav", tmp_path / "ref.wav"
    for path, seconds, rate in ((region, 1.25, 48000), (ref, 2.0, 22050)):
        with AudioFile(str(path), "w", rate, 2) as f:
            f.write((0.1 * rng.standard_normal((2, int(seconds * rate)))).astype(np.float32))
    out = tmp_path / "out"
    assert (
        main(["accompany", str(region), "--model", "riff-clap", "--text", "low sine tone", "--param", "steps=2", "--out", str(out / "a")])
        == 0
    )
    assert (
        main(["accompany", str(region), "--model", "riff-clap", "--reference", str(ref), "--param", "steps=2", "--out", str(out / "b")])
        == 0
    )
    assert (
        main(
            ["generate", "--seconds", "0.5", "--model", "riff-clap", "--text", "noise burst", "--param", "steps=2", "--out", str(out / "c")]
        )
        == 0
    )
    for folder, frames, rate in (("a", 60000, 48000), ("b", 60000, 48000), ("c", 22050, 44100)):
        (wav,) = sorted((out / folder).glob("*.wav"))
        with AudioFile(str(wav)) as f:
            assert (f.frames, f.samplerate, f.num_channels) == (frames, rate, 2)
    short = tmp_path / "short.wav"
    with AudioFile(str(short), "w", 8000, 1) as f:
        f.write(np.zeros((1, 800), np.float32))
    assert main(["accompany", str(region), "--model", "riff-clap", "--reference", str(short), "--out", str(out / "d")]) != 0
    assert not (out / "d").exists() or not list((out / "d").glob("*.wav"))


def test_riff_evaluation_runs_every_condition_and_its_metrics_behave(riff_exports, echo_exports, tmp_path):
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.eval.riff import CONDITIONS, density_coverage, frechet, generate_parts, kernel_distance, riff_items, score_parts
    from tests.lab.data.corpus_builders import make_stemlink, tone

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((60, 4)), rng.standard_normal((60, 4)) + 3
    assert frechet(a, a) == pytest.approx(0, abs=1e-6) and frechet(a, b) > 30  # mean shift of 3 in 4 dims: ~36
    assert abs(kernel_distance(a, rng.standard_normal((60, 4)))) < 0.5 < kernel_distance(a, b)
    assert density_coverage(a, a)[1] == 1.0 and density_coverage(b, a) == (0.0, 0.0)
    plan = {f"t{n}": {"bass": tone(3.0, 60.0 + 10 * n), "piano": tone(3.0, 400.0 + 50 * n), "drums": tone(3.0, 2000.0)} for n in range(4)}
    root = make_stemlink(tmp_path / "corpus", plan, {t: "test" for t in plan})
    items = riff_items(str(root), "test", seconds=1.0, sample_rate=8000, ref_seconds=1.0)
    assert len(items) == 4 and {i.cls for i in items} == {"bass", "drums", "piano"}  # round robin over the target class
    assert all(i.context.shape == i.part.shape == (2, 8000) and i.reference.shape == (2, 8000) for i in items)
    registry = ModelRegistry(riff_exports, device="cpu", threads=1)
    model, clap_audio, clap_text = registry.get("riff-clap"), registry.get("clap-debug.audio"), registry.get("clap-debug.text")
    scorer = ModelRegistry(echo_exports, device="cpu", threads=1).get("echo")
    named = riff_items(str(root), "test", seconds=1.0, sample_rate=8000, ref_seconds=1.0, targets=("bass", "piano"))
    assert {i.cls for i in named} <= {"bass", "piano"} and all("drums" in i.context_classes for i in named)
    echo_parts = generate_parts(scorer, named, condition="ctx", params={}, sample_rate=8000)  # a model steered by named context stems
    assert all(p.shape == (2, 8000) for p in echo_parts)
    with pytest.raises(ValueError, match="takes only the context"):
        generate_parts(scorer, named, condition="text+ctx", params={}, sample_rate=8000)
    for condition in CONDITIONS:
        parts = generate_parts(model, items, condition=condition, params={"steps": 2}, sample_rate=8000)
        assert all(p.shape == (2, 8000) for p in parts)
        scores = score_parts(parts, items, sample_rate=8000, clap_audio=clap_audio, clap_text=clap_text, scorer=scorer, condition=condition)
        assert (
            scores["items"] == 4
            and 0 <= scores["apa"] <= 1
            and 0 <= scores["audible"] <= 1
            and scores["text_chance"] == pytest.approx(1 / 3)
            and 0 <= scores["text_retrieval_true"] <= 1
        )
        assert ("clap_aa_reference" in scores) == ("reference" in condition)


def test_bench_riff_section_tabulates_every_condition_the_models_take(riff_exports, tmp_path):
    import shutil

    from stemlink.apps.bench.report import _md_riff
    from stemlink.apps.bench.suite import BenchConfig, bench_riff_section
    from stemlink.engine.registry import ModelRegistry
    from stemlink.lab.export.echo import build_echo_export
    from tests.lab.data.corpus_builders import make_stemlink, tone

    exports = tmp_path / "exports"
    shutil.copytree(riff_exports, exports)
    build_echo_export(exports, sample_rate=8000, window=2048)
    plan = {f"t{n}": {"bass": tone(16.0, 60.0 + 10 * n), "piano": tone(16.0, 400.0 + 50 * n)} for n in range(2)}
    root = make_stemlink(tmp_path / "corpus", plan, {t: "test" for t in plan})
    config = BenchConfig(
        data=root,
        ood=root,
        ood_split="test",
        riff_items=2,
        riff_edm_steps=(2,),
        riff_clap="clap-debug",
        riff_scorer="echo",
        riff_conditions=("ctx", "text+ctx", "reference"),
    )
    registry = ModelRegistry(exports, device="cpu", threads=1)
    section = bench_riff_section(registry, config, log=lambda *a: None)
    riffs = sorted(n for n in registry.names() if registry.spec(n).family == "riff")
    assert {(r["model"], r["condition"]) for r in section["runs"] if r["data"] == "test"} == {
        ("riff-clap", c) for c in ("ctx", "text+ctx", "reference")
    }
    assert riffs == ["riff-clap"] and all(r["items"] == 2 for r in section["runs"])
    table = "\n".join(_md_riff(section, {}))
    assert table.count("| riff-clap |") == 2 * len(section["runs"])  # both tables, one row per run
    empty = bench_riff_section(ModelRegistry(tmp_path / "none", device="cpu"), config, log=lambda *a: None)
    assert empty["runs"] == [] and "no riff model" in empty["skipped"]


def test_text_and_reference_cross_a_real_socket(riff_exports, start_server):
    from stemlink.bridge.client import Client
    from stemlink.errors import InvalidInput

    server = start_server("tcp", exports_dir=riff_exports)
    rng = np.random.default_rng(7)
    context = (0.1 * rng.standard_normal((2, 9000))).astype(np.float32)
    reference = (0.1 * rng.standard_normal((2, 8000))).astype(np.float32)
    with Client(server.address, timeout=60) as client:
        info = {m.name: m for m in client.hello().models}
        assert info["riff-clap"].conditions == ("text", "reference") and info["codec-debug.encoder"].conditions == ()
        texted = client.accompany(context, 8000, model="riff-clap", text="low sine tone", params={"steps": 2}, seed=1)
        referenced = client.accompany(context, 8000, model="riff-clap", reference=reference, params={"steps": 2}, seed=1)
        assert texted.stems["part"].shape == referenced.stems["part"].shape == (2, 9000)
        assert texted.info["condition"] == {"text": "low sine tone"}
        gen = client.generate(4000, 8000, model="riff-clap", text="noise burst", params={"steps": 2})
        assert gen.stems["part"].shape == (2, 4000)
        with pytest.raises(InvalidInput, match="not both"):
            client.accompany(context, 8000, model="riff-clap", text="x", reference=reference)
        with pytest.raises(InvalidInput, match="style reference must be"):
            client.accompany(context, 8000, model="riff-clap", reference=reference[:, :100])
