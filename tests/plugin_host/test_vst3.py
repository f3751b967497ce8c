"""A real VST3 in an FX chain: a tiny DPF gain plugin is compiled here (needs Debian dpf-source,
g++ and make; skipped otherwise), loaded from a preset's [[fx]] type = "vst3" entry, and must
scale the audio exactly; a wrong parameter name (pedalboard would ignore it) is a PresetError."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from stemlink.errors import PresetError
from stemlink.plugin_host.fx import apply_chain, build_chain, parse_fx

DPF = Path("/usr/share/dpf")
INFO_H = """#pragma once
#define DISTRHO_PLUGIN_BRAND "stemlink"
#define DISTRHO_PLUGIN_NAME "StemlinkGain"
#define DISTRHO_PLUGIN_URI "urn:stemlink:gain"
#define DISTRHO_PLUGIN_CLAP_ID "stemlink.gain"
#define DISTRHO_PLUGIN_HAS_UI 0
#define DISTRHO_PLUGIN_IS_RT_SAFE 1
#define DISTRHO_PLUGIN_NUM_INPUTS 2
#define DISTRHO_PLUGIN_NUM_OUTPUTS 2
"""
PLUGIN_CPP = """#include "DistrhoPlugin.hpp"
START_NAMESPACE_DISTRHO
class GainPlugin : public Plugin {
public:
    GainPlugin() : Plugin(1, 0, 0), fGain(1.0f) {}
protected:
    const char* getLabel() const override { return "StemlinkGain"; }
    const char* getMaker() const override { return "stemlink"; }
    const char* getLicense() const override { return "MIT"; }
    uint32_t getVersion() const override { return d_version(1, 0, 0); }
    int64_t getUniqueId() const override { return d_cconst('s', 'l', 'G', 'n'); }
    void initParameter(uint32_t, Parameter& p) override {
        p.hints = kParameterIsAutomatable;
        p.name = "Factor"; p.symbol = "factor";
        p.ranges.def = 1.0f; p.ranges.min = 0.0f; p.ranges.max = 2.0f;
    }
    float getParameterValue(uint32_t) const override { return fGain; }
    void setParameterValue(uint32_t, float v) override { fGain = v; }
    void run(const float** inputs, float** outputs, uint32_t frames) override {
        for (uint32_t c = 0; c < 2; ++c)
            for (uint32_t i = 0; i < frames; ++i) outputs[c][i] = inputs[c][i] * fGain;
    }
private:
    float fGain;
    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(GainPlugin)
};
Plugin* createPlugin() { return new GainPlugin(); }
END_NAMESPACE_DISTRHO
"""
MAKEFILE = f"""NAME = stemlink-gain
FILES_DSP = plugin.cpp
DPF_PATH = {DPF}
DPF_TARGET_DIR = bin
DPF_BUILD_DIR = build
HAVE_OPENGL = false
HAVE_DGL = false
include $(DPF_PATH)/Makefile.plugins.mk
TARGETS += vst3
all: $(TARGETS)
"""


@pytest.fixture(scope="module")
def gain_vst3(tmp_path_factory) -> Path:
    if not (DPF / "Makefile.plugins.mk").exists() or not shutil.which("g++") or not shutil.which("make"):
        pytest.skip("building a VST3 needs Debian dpf-source, g++ and make (apt-get install dpf-source g++ make)")
    src = tmp_path_factory.mktemp("vst3")
    for name, text in {"DistrhoPluginInfo.h": INFO_H, "plugin.cpp": PLUGIN_CPP, "Makefile": MAKEFILE}.items():
        (src / name).write_text(text)
    subprocess.run(["make", "-j2"], cwd=src, check=True, capture_output=True, timeout=300)
    return src / "bin" / "stemlink-gain.vst3"


def test_vst3_in_fx_chain(gain_vst3):
    board = build_chain(parse_fx([{"type": "vst3", "path": str(gain_vst3), "params": {"factor": 0.5}}, {"type": "Gain", "gain_db": 0.0}]))
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 10000))).astype(np.float32)
    np.testing.assert_allclose(apply_chain(board, x, 44100), 0.5 * x, atol=1e-6)


def test_vst3_unknown_parameter_is_named(gain_vst3):
    with pytest.raises(PresetError, match="no parameter 'gain'; allowed: factor") as info:
        build_chain(parse_fx([{"type": "vst3", "path": str(gain_vst3), "params": {"gain": 0.5}}]))
    assert info.value.field == "fx[0].params.gain"
