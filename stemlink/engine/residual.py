"""Mixture consistency for separation: give each stem its share of what the model left out.

A separator's stems, brought back to the host rate, do not sum to the host-rate mix: nothing
above the model's Nyquist frequency survives (an 8 kHz model returns nothing above 4 kHz of a
44.1 kHz mix), plus small resampling errors. That residual `mix - sum(stems)` must go
somewhere so the stems sum to the mix exactly. Splitting it equally puts a quarter of every
hi-hat and string noise into every stem. `ResidualSplit` instead shares it, sample by sample,
in proportion to each stem's energy in the top quarter of the model's band (3/8 to 1/2 of
the model rate: 3-4 kHz for an 8 kHz model), tracked by a 10 ms envelope: the stem that is
bright just below the cut-off receives the band above it (cymbals go to drums, pick noise to
guitar). With no stem active in that band, the share falls back to equal.

Measured with a perfect band-limited separator (true stems through 8 kHz and back) on the
44.1 kHz demo song: SI-SDR bass/drums/guitar/piano 32.7/11.6/11.4/57.7 dB (avg 28.3) with
this split, 19.9/9.6/13.4/21.9 (avg 16.2) with an equal split (guitar loses some of its
band to the drums; every other stem gains).

A full-band model (model rate >= host rate: nothing is above its Nyquist) leaves only rounding
and crossfade residue; then the shares follow each stem's whole-band energy envelope, i.e. the
separator's own estimate of who is playing, not a band edge it does not have.

Streaming: the filters carry their state from block to block, so the result does not depend
on how a region is cut into blocks. The weights sum to 1 at every sample, so the output stems
sum to the mix (float32 rounding only).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

ENVELOPE_SECONDS = 0.01  # time constant of the energy envelope
BAND_START = 0.375  # the band that decides the shares starts at this fraction of the model rate
MODES = ("band", "equal")  # share by top-of-band energy, or equally
FLOOR = 1e-9  # energy added to every stem's envelope: equal shares where all stems are quiet


class ResidualSplit:
    """Per-stream state; `__call__(stems (S, C, n), mix (C, n)) -> stems summing to mix`."""

    def __init__(self, stems: int, channels: int, sample_rate: int, model_rate: int, mode: str = "band"):
        if mode not in MODES:
            raise ValueError(f"residual mode must be one of {MODES}, got {mode!r}")
        self.stems, self.mode = stems, mode
        nyquist = 0.5 * sample_rate
        low = min(BAND_START * model_rate, 0.45 * sample_rate)  # top of the model's band (or the host's, if lower)
        self.full_band = model_rate >= sample_rate
        self._band = signal.butter(4, low / nyquist, btype="highpass", output="sos")
        self._band_state = np.zeros((self._band.shape[0], stems, channels, 2))
        self._pole = float(np.exp(-1.0 / (ENVELOPE_SECONDS * sample_rate)))
        self._env_state = np.zeros((stems, channels, 1))

    def weights(self, stems: np.ndarray) -> np.ndarray:
        """(S, C, n) host-rate stems -> (S, C, n) shares summing to 1 over S (advances the state)."""
        if self.full_band:
            band = stems.astype(np.float64)
        else:
            band, self._band_state = signal.sosfilt(self._band, stems.astype(np.float64), axis=-1, zi=self._band_state)
        env, self._env_state = signal.lfilter([1.0 - self._pole], [1.0, -self._pole], band * band, axis=-1, zi=self._env_state)
        env = np.maximum(env, 0.0) + FLOOR
        return env / env.sum(axis=0, keepdims=True)

    def __call__(self, stems: np.ndarray, mix: np.ndarray) -> np.ndarray:
        residual = mix - stems.sum(axis=0)
        if self.mode == "equal":
            return (stems + residual / self.stems).astype(np.float32)
        return (stems + self.weights(stems) * residual).astype(np.float32)
