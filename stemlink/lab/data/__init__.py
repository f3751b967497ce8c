"""The stem corpus: renderer, dataset layouts and the training dataset interface.

from stemlink.lab.data import open_corpus, StemWindows, SubmixPairs, StemPrompts
corpus = open_corpus("data/corpus")                 # layout auto-detected
windows = StemWindows(corpus, "train", sample_rate=16000, length=32768)
windows[0]  # float32 tensor (4, 32768): bass, drums, guitar, piano
"""

from stemlink.lab.data.classes import CLASSES, MSDM_STEMS, map_label
from stemlink.lab.data.corpus import LAYOUTS, Corpus, Track, open_corpus
from stemlink.lab.data.windows import SoloStems, StemPrompts, StemWindows, SubmixPairs

__all__ = [
    "CLASSES",
    "MSDM_STEMS",
    "map_label",
    "LAYOUTS",
    "Corpus",
    "Track",
    "open_corpus",
    "SoloStems",
    "StemPrompts",
    "StemWindows",
    "SubmixPairs",
]
