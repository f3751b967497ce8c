"""Training loops, one module per model family (`msdm`, `cocola`, `bandsplit`, `codec`, `dit`, `clap`, `bridge`, `gmsdi`), sharing `loop` utilities,
the training-preset reader (`presets`) and the checkpoint loader (`stemlink.lab.checkpoints`).

Each family module exposes `add_arguments(parser)` and `main(args) -> int`, used by
`stemlink train FAMILY --preset NAME`. Training presets live in `presets/train/`.
"""

FAMILIES = {
    "msdm": "stemlink.lab.train.msdm",
    "cocola": "stemlink.lab.train.cocola",
    "bandsplit": "stemlink.lab.train.bandsplit",
    "codec": "stemlink.lab.train.codec",
    "dit": "stemlink.lab.train.dit",
    "clap": "stemlink.lab.train.clap",
    "bridge": "stemlink.lab.train.bridge",
    "gmsdi": "stemlink.lab.train.gmsdi",
}
