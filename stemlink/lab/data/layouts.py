"""Readers for the published folder layouts of the datasets `open_corpus` understands.

Each reader takes the dataset root and returns every `Track` with its split ("train",
"valid", "test"), its stems keyed by common class (`classes.map_label`) and its metadata.

- stemlink: what `stemlink data render` writes (corpus.json + <track>/metadata.json).
- slakh: Slakh2100 / Slakh2100-redux flac: {train,validation,test}/TrackNNNNN/
  {mix.flac, metadata.yaml, stems/SNN.flac}; files of one class are summed (MSDM practice);
  "omitted" tracks and stems with audio_rendered: false are skipped.
- musdb: MUSDB18-HQ: {train,test}/<Artist - Title>/{mixture,bass,drums,other,vocals}.wav;
  the 14 official validation tracks (musdb's mus.yaml list) of train/ form "valid".
- moisesdb: <root>/<track uuid>/data.json + <stemName>/<source uuid>.wav; no official split:
  a seeded 80/10/10 split over the sorted track ids (as the COCOLA paper does).
- cocochorales: [main_dataset/][{train,valid,test}/]<ensemble>_track<NNNNNN>/{mix.wav,
  metadata.yaml, stems_audio/<voice 0-3>_<instrument>.wav}; split from the split folder, else
  from the track number (1-192000 train, 192001-216000 valid, 216001-240000 test, as the
  dataset defines); every voice is kept as its own stem: the first voice of a class is keyed
  by the class, later ones "<class>_2", "<class>_3" (chorale ensembles double classes).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

from stemlink.lab.data.classes import gm_class, map_label
from stemlink.lab.data.corpus import Track

AUDIO_EXT = (".flac", ".wav", ".aiff", ".aif", ".mp3")

MUSDB_VALID = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)


def _add(stems: dict[str, tuple[Path, ...]], cls: str, path: Path) -> None:
    stems[cls] = stems.get(cls, ()) + (path,)


def _add_part(stems: dict[str, tuple[Path, ...]], cls: str, path: Path) -> None:
    key, n = cls, 1
    while key in stems:
        n += 1
        key = f"{cls}_{n}"
    stems[key] = (path,)


def seeded_split(ids: list[str], seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, str]:
    """Deterministic train/valid/test assignment of ids (sorted first)."""
    from stemlink.lab.data.render import assign_splits

    ids = sorted(ids)
    labels = assign_splits(len(ids), seed, fractions)
    return dict(zip(ids, labels, strict=True))


# ------------------------------------------------------------------ stemlink (rendered)
def read_stemlink(root: Path) -> list[Track]:
    folders = sorted(p.parent for p in root.glob("*/metadata.json"))
    if not (root / "READY").exists():
        warnings.warn(
            f"{root} has no READY file: its render is unfinished or was interrupted; using the {len(folders)} tracks complete so far",
            stacklevel=3,
        )
    tracks = []
    for folder in folders:
        meta = json.loads((folder / "metadata.json").read_text())
        stems: dict[str, tuple[Path, ...]] = {cls: (folder / info["file"],) for cls, info in sorted(meta["stems"].items())}
        tracks.append(Track(meta["id"], meta["split"], stems, meta, folder / meta.get("mix", "mix.flac")))
    return tracks


# ------------------------------------------------------------------ Slakh2100
def read_slakh(root: Path) -> list[Track]:
    import yaml

    tracks = []
    for split_dir, split in (("train", "train"), ("validation", "valid"), ("test", "test")):
        for folder in sorted((root / split_dir).glob("Track*")):
            meta_path = folder / "metadata.yaml"
            if not meta_path.exists():
                continue
            meta = yaml.safe_load(meta_path.read_text()) or {}
            audio_dir = folder / str(meta.get("audio_dir", "stems"))
            stems: dict[str, tuple[Path, ...]] = {}
            for sid, info in sorted((meta.get("stems") or {}).items()):
                if info.get("audio_rendered") is False:
                    continue
                path = next((audio_dir / f"{sid}{ext}" for ext in AUDIO_EXT if (audio_dir / f"{sid}{ext}").exists()), None)
                if path is None:
                    continue
                if info.get("is_drum"):
                    cls = "drums"
                elif info.get("inst_class"):
                    cls = map_label("slakh", str(info["inst_class"]))
                else:
                    cls = gm_class(int(info.get("program_num", 0)))
                _add(stems, cls, path)
            mix = next((folder / f"mix{ext}" for ext in AUDIO_EXT if (folder / f"mix{ext}").exists()), None)
            if stems:
                tracks.append(Track(folder.name, split, stems, {"source": "slakh", "slakh": meta}, mix))
    return tracks


# ------------------------------------------------------------------ MUSDB18-HQ
def read_musdb(root: Path) -> list[Track]:
    tracks = []
    for split_dir in ("train", "test"):
        for folder in sorted(p for p in (root / split_dir).iterdir() if p.is_dir()) if (root / split_dir).is_dir() else []:
            stems: dict[str, tuple[Path, ...]] = {}
            for name in ("bass", "drums", "other", "vocals"):
                path = next((folder / f"{name}{ext}" for ext in AUDIO_EXT if (folder / f"{name}{ext}").exists()), None)
                if path is not None:
                    _add(stems, map_label("musdb", name), path)
            split = "test" if split_dir == "test" else ("valid" if folder.name in MUSDB_VALID else "train")
            mix = next((folder / f"mixture{ext}" for ext in AUDIO_EXT if (folder / f"mixture{ext}").exists()), None)
            if stems:
                tracks.append(Track(folder.name, split, stems, {"source": "musdb"}, mix))
    return tracks


# ------------------------------------------------------------------ MoisesDB
def read_moisesdb(root: Path) -> list[Track]:
    found = []
    for data_json in sorted(root.glob("**/data.json")):
        folder = data_json.parent
        meta = json.loads(data_json.read_text())
        stems: dict[str, tuple[Path, ...]] = {}
        labels: dict[str, list[str]] = {}
        for stem in meta.get("stems", []):
            name = str(stem.get("stemName", "other"))
            cls = map_label("moisesdb", name)
            for src in stem.get("tracks", []):
                path = folder / name / f"{src['id']}.{src.get('extension', 'wav')}"
                if path.exists():
                    _add(stems, cls, path)
                    labels.setdefault(cls, []).append(str(src.get("trackType", name)))
        if stems:
            found.append(
                (
                    folder.name,
                    stems,
                    {
                        "source": "moisesdb",
                        "song": meta.get("song"),
                        "artist": meta.get("artist"),
                        "genre": meta.get("genre"),
                        "labels": labels,
                    },
                )
            )
    splits = seeded_split([f[0] for f in found])
    return [Track(tid, splits[tid], stems, meta) for tid, stems, meta in found]


# ------------------------------------------------------------------ CocoChorales
def _coco_split(name: str) -> str:
    number = int("".join(ch for ch in name.rsplit("_track", 1)[1] if ch.isdigit()) or 0)
    return "train" if number <= 192000 else ("valid" if number <= 216000 else "test")


def read_cocochorales(root: Path) -> list[Track]:
    import yaml

    if (root / "main_dataset").is_dir():
        root = root / "main_dataset"
    tracks = []
    folders = sorted(p.parent for p in root.glob("**/stems_audio") if "_track" in p.parent.name)
    for folder in folders:
        split = folder.parent.name if folder.parent.name in ("train", "valid", "test") else _coco_split(folder.name)
        stems: dict[str, tuple[Path, ...]] = {}
        instruments = []
        for path in sorted((folder / "stems_audio").glob("*.wav"), key=lambda p: (int(p.stem.split("_", 1)[0]), p.name)):
            instrument = path.stem.split("_", 1)[1]
            instruments.append(instrument)
            _add_part(stems, map_label("cocochorales", instrument), path)
        meta: dict = {}
        if (folder / "metadata.yaml").exists():
            meta = yaml.safe_load((folder / "metadata.yaml").read_text()) or {}
        info = {
            "source": "cocochorales",
            "ensemble": folder.name.split("_track")[0],
            "instruments": instruments,
            "cocochorales": meta,
            "stems": {k: {"tags": [instruments[i].replace("_", " "), k.split("_")[0], "chorale"]} for i, k in enumerate(stems)},
        }
        mix = folder / "mix.wav"
        if stems:
            tracks.append(Track(folder.name, split, stems, info, mix if mix.exists() else None))
    return tracks


READERS: dict[str, Callable[[Path], list[Track]]] = {
    "stemlink": read_stemlink,
    "slakh": read_slakh,
    "musdb": read_musdb,
    "moisesdb": read_moisesdb,
    "cocochorales": read_cocochorales,
}


def detect(root: Path) -> str:
    """Guess the layout of a dataset root from its marker files."""
    from stemlink.errors import InvalidInput

    if (root / "corpus.json").exists() or any(root.glob("*/metadata.json")):
        return "stemlink"
    if any(root.glob("*/Track*/metadata.yaml")):
        return "slakh"
    if any(root.glob("*/*/mixture.wav")) or any(root.glob("*/*/mixture.flac")):
        return "musdb"
    if (
        any(root.glob("*_track*/stems_audio"))
        or any(root.glob("*/*_track*/stems_audio"))
        or any(root.glob("main_dataset/*/*_track*/stems_audio"))
    ):
        return "cocochorales"
    if any(root.glob("**/data.json")):
        return "moisesdb"
    raise InvalidInput(
        f"cannot detect the dataset layout of {root}; pass layout= one of stemlink, slakh, musdb, moisesdb, cocochorales", field="layout"
    )
