"""The stem corpus: renderer, dataset layouts and the training dataset interface.

    from stemlink.engine.data import open_corpus, StemWindows, SubmixPairs, StemPrompts
"""
