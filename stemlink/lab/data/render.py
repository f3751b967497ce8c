"""`stemlink data render`: render a multi-stem corpus (Slakh-like) to a folder, in parallel.

Layout written (the "stemlink" layout read by `open_corpus`)::

    OUT/corpus.json                     config, track list with splits, class counts
    OUT/READY                           written last, when every track is complete
    OUT/<track_id>/<class>.flac         each stem, 24-bit stereo FLAC at --sr
    OUT/<track_id>/mix.flac             the mix = sum of the stems (bit-exact)
    OUT/<track_id>/midi/<class>.mid     the MIDI each stem was rendered from
    OUT/<track_id>/metadata.json        stems (class, GM program, instrument, tags), tempo,
                                        key, meter, style, sections, chords, split

Deterministic: track i uses numpy Generator([seed, i]); splits come from a permutation drawn
from Generator([seed]); JSON is written with sorted keys and no timestamps, so the same
command gives byte-identical files. A track whose metadata.json already exists with the
same config is skipped (an interrupted render resumes).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stemlink.audio.files import quantize24, write_flac
from stemlink.errors import InvalidInput
from stemlink.lab.data.sources import SOURCES, compose
from stemlink.lab.data.synth import check_synth, render_part, soundfont_path, write_midi

RENDERER_VERSION = 2  # 2: short sections, every stem plays inside the clip, stem loudness balance
STEM_LEVEL_DB = -20.0
SPLITS = ("train", "valid", "test")
SYNTHS = ("lib", "cli")
_RENDERERS: dict = {}


@dataclass(frozen=True)
class RenderConfig:
    out: str
    tracks: int
    seconds: float
    sample_rate: int = 16000
    seed: int = 0
    source: str = "procedural"
    jobs: int = 2
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    synth: str = "lib"  # "lib": libfluidsynth in-process (fast); "cli": the fluidsynth program

    def validate(self) -> None:
        if self.tracks < 1:
            raise InvalidInput(f"--tracks must be >= 1, got {self.tracks}", field="tracks")
        if not 1.0 <= self.seconds <= 600.0:
            raise InvalidInput(f"--seconds must be in [1, 600], got {self.seconds}", field="seconds")
        if not 8000 <= self.sample_rate <= 192000:
            raise InvalidInput(f"--sr must be in [8000, 192000] Hz, got {self.sample_rate}", field="sr")
        if self.source not in SOURCES:
            raise InvalidInput(f"--source must be one of {', '.join(SOURCES)}, got {self.source!r}", field="source")
        if self.synth not in SYNTHS:
            raise InvalidInput(f"--synth must be one of {', '.join(SYNTHS)}, got {self.synth!r}", field="synth")
        if self.jobs < 1:
            raise InvalidInput(f"--jobs must be >= 1, got {self.jobs}", field="jobs")

    def digest(self) -> str:
        """Identity of what a track's content depends on (not out/jobs/tracks)."""
        key = {
            "seconds": self.seconds,
            "sample_rate": self.sample_rate,
            "seed": self.seed,
            "source": self.source,
            "split": list(self.split),
            "version": RENDERER_VERSION,
        }
        if self.synth != "cli":  # renders made before the in-process synth keep their digest
            key["synth"] = self.synth
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def active_rms_db(audio: np.ndarray, sample_rate: int) -> float:
    """RMS (dBFS) over the 50 ms blocks within 40 dB of the loudest block; -20 for silence
    (so a silent stem gets gain 0 dB)."""
    mono = audio.mean(axis=0, dtype=np.float64)
    block = max(1, int(0.05 * sample_rate))
    nb = len(mono) // block
    if nb == 0:
        return STEM_LEVEL_DB
    power = (mono[: nb * block] ** 2).reshape(nb, block).mean(axis=1)
    if power.max() <= 1e-12:
        return STEM_LEVEL_DB
    active = power[power >= power.max() * 1e-4]
    return float(10 * np.log10(active.mean()))


def track_id(index: int) -> str:
    return f"track_{index:05d}"


def assign_splits(n: int, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> list[str]:
    """Split label per track index: a seeded permutation, then train/valid/test by fraction.

    valid and test get round(fraction * n) tracks each, at least one each when n >= 3.
    """
    n_valid = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_valid, n_test = max(1, n_valid), max(1, n_test)
    order = np.random.default_rng([seed]).permutation(n)
    labels = ["train"] * n
    for k, idx in enumerate(order):
        if k < n_test:
            labels[idx] = "test"
        elif k < n_test + n_valid:
            labels[idx] = "valid"
    return labels


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _dump_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=_json_default) + "\n")
    os.replace(tmp, path)


def render_track(cfg: RenderConfig, index: int, split: str) -> dict:
    """Compose, render and write one track; returns its metadata (also in metadata.json)."""
    tid = track_id(index)
    folder = Path(cfg.out) / tid
    meta_path = folder / "metadata.json"
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("config_digest") == cfg.digest() and meta.get("split") == split:
                return meta
        except json.JSONDecodeError:
            pass
    rng = np.random.default_rng([cfg.seed, index])
    plan = compose(cfg.source, rng, cfg.seconds, seed=cfg.seed, index=index)
    n = int(round(cfg.seconds * cfg.sample_rate))
    (folder / "midi").mkdir(parents=True, exist_ok=True)
    stems = {}
    for cls, part in plan.parts.items():
        if cfg.synth == "cli":
            stems[cls] = render_part(part, plan.tempo, cfg.sample_rate, n, midi_out=folder / "midi" / f"{cls}.mid")
        else:
            write_midi(part, folder / "midi" / f"{cls}.mid", plan.tempo)
            stems[cls] = _renderer(cfg.sample_rate).render(part, n)
    # level: each stem to -20 dBFS active loudness +-3 dB, then one common gain so the mix
    # peaks at -6..-1 dBFS (Slakh likewise loudness-normalizes stems before mixing)
    gains_db = {
        cls: float(np.round(STEM_LEVEL_DB - active_rms_db(stems[cls], cfg.sample_rate) + rng.uniform(-3.0, 3.0), 2)) for cls in stems
    }
    for cls in stems:
        stems[cls] = stems[cls] * np.float32(10 ** (gains_db[cls] / 20))
    mix = np.sum([s.astype(np.float64) for s in stems.values()], axis=0)
    peak = float(np.abs(mix).max()) or 1.0
    target = 10 ** (rng.uniform(-6.0, -1.0) / 20)
    common = target / peak
    stem_info = {}
    total = np.zeros((2, n), dtype=np.float64)
    for cls, audio in stems.items():
        q = quantize24(audio * common)
        total += q
        write_flac(folder / f"{cls}.flac", q, cfg.sample_rate)
        part = plan.parts[cls]
        rms = float(np.sqrt(np.mean(q.astype(np.float64) ** 2)))
        stem_info[cls] = {
            "file": f"{cls}.flac",
            "midi": f"midi/{cls}.mid",
            "class": cls,
            "program": part.program,
            "is_drum": part.is_drum,
            "instrument": part.instrument,
            "tags": plan.stem_tags.get(cls, [cls]),
            "gain_db": gains_db[cls],
            "rms_dbfs": round(20 * np.log10(max(rms, 1e-12)), 2),
            "notes": len(part.notes),
            **plan.stem_meta.get(cls, {}),
        }
    mix_q = total.astype(np.float32)
    write_flac(folder / "mix.flac", mix_q, cfg.sample_rate)
    meta = {
        "id": tid,
        "index": index,
        "split": split,
        "source": plan.source,
        "sample_rate": cfg.sample_rate,
        "seconds": cfg.seconds,
        "num_samples": n,
        "channels": 2,
        "seed": [cfg.seed, index],
        "tags": plan.tags,
        "stems": stem_info,
        "mix": "mix.flac",
        "mix_gain_db": round(20 * np.log10(common), 3),
        "config_digest": cfg.digest(),
        "renderer": {
            "version": RENDERER_VERSION,
            "synth": "fluidsynth" if cfg.synth == "cli" else "fluidsynth-lib",
            "soundfont": soundfont_path().name,
        },
        **plan.meta,
    }
    _dump_json(meta_path, meta)
    return meta


def _renderer(sample_rate: int):
    """This process's in-process FluidSynth at `sample_rate` (soundfont loaded once)."""
    from stemlink.lab.data.fluidlib import FluidRenderer

    key = (os.getpid(), sample_rate)
    if key not in _RENDERERS:
        _RENDERERS[key] = FluidRenderer(sample_rate)
    return _RENDERERS[key]


def _worker(args: tuple[RenderConfig, int, str]) -> tuple[int, dict, float]:
    cfg, index, split = args
    t0 = time.perf_counter()
    meta = render_track(cfg, index, split)
    return index, meta, time.perf_counter() - t0


def render_corpus(cfg: RenderConfig, progress: Callable[[str], None] = print) -> dict:
    """Render every track (parallel over `cfg.jobs` processes), then corpus.json and READY."""
    cfg.validate()
    if cfg.synth == "cli":
        check_synth()
    else:
        from stemlink.lab.data.fluidlib import check_lib

        check_lib()  # fail early (MissingDependency) before forking workers
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ready = out / "READY"
    if ready.exists():
        ready.unlink()
    splits = assign_splits(cfg.tracks, cfg.seed, cfg.split)
    jobs = [(cfg, i, splits[i]) for i in range(cfg.tracks)]
    metas: dict[int, dict] = {}
    t0 = time.perf_counter()
    results: Iterator[tuple[int, dict, float]]
    if cfg.jobs == 1:
        results = map(_worker, jobs)
        pool = None
    else:
        # forkserver, not fork: the caller may hold threads (torch, zmq, a test runner), and a
        # forked child inheriting their locks can deadlock inside libfluidsynth or numpy.
        pool = mp.get_context("forkserver").Pool(cfg.jobs)
        results = pool.imap_unordered(_worker, jobs)
    try:
        for done, (track, meta, secs) in enumerate(results, 1):
            metas[track] = meta
            elapsed = time.perf_counter() - t0
            audio = done * cfg.seconds
            progress(
                f"[render] {done}/{cfg.tracks} {meta['id']} {meta['split']:5s} "
                f"{meta.get('style', meta['source'])} {len(meta['stems'])} stems {secs:.1f}s "
                f"| {audio / max(elapsed, 1e-9):.1f}x real time"
            )
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    classes: dict[str, int] = {}
    for m in metas.values():
        for c in m["stems"]:
            classes[c] = classes.get(c, 0) + 1
    index = {
        "version": 1,
        "layout": "stemlink",
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("out", "jobs")},
        "config_digest": cfg.digest(),
        "tracks": [
            {"id": metas[i]["id"], "split": metas[i]["split"], "source": metas[i]["source"], "stems": sorted(metas[i]["stems"])}
            for i in sorted(metas)
        ],
        "splits": {s: sum(1 for m in metas.values() if m["split"] == s) for s in SPLITS},
        "classes": dict(sorted(classes.items())),
        "hours": round(cfg.tracks * cfg.seconds / 3600, 4),
    }
    _dump_json(out / "corpus.json", index)
    ready.write_text(json.dumps({"tracks": cfg.tracks, "config_digest": cfg.digest()}, sort_keys=True) + "\n")
    return index
