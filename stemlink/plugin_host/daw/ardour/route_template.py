"""The XML of a new Ardour audio track (`<Route>`, format 7002), as Ardour 7.3 writes one for
`Session:new_audio_track` (read off a session saved by `ardour7-lua`): solo/mute/phase/monitor
controls, their automation lists, a panner, the disk writer and reader, an empty trigger box,
polarity, trim, fader, meter and main outs. Input: the first system capture ports; output: the
Master bus, one port per channel (a track with more channels than Master connects the extra
ones round-robin, as Ardour does). Ids come from the session's counter (`session.IdCounter`).
"""

from __future__ import annotations

from collections.abc import Callable
from xml.etree import ElementTree as ET

TRIGGER_SLOTS = 16
MASTER_CHANNELS = 2
TRIGGER = {
    "name": "",
    "gain": "1",
    "color": "3200171775",
    "follow-count": "1",
    "use-follow-length": "0",
    "follow-length": "1|0|0",
    "legato": "0",
    "velocity-effect": "0",
    "follow-action-probability": "0",
    "quantization": "1|0|0",
    "launch-style": "OneShot",
    "follow-action-0": "Again:0",
    "follow-action-1": "Stop:0",
    "stretchable": "1",
    "cue_isolated": "0",
    "allow_patch_changes": "1",
    "stretch_mode": "Crisp",
    "segment-tempo": "0",
    "start": "a0",
}


def _automation(parent: ET.Element, ids: Callable[[], str], lists: list[tuple[str, str, str]]) -> None:
    node = ET.SubElement(parent, "Automation")
    for key, style, domain in lists:
        ET.SubElement(
            node, "AutomationList", {"automation-id": key, "id": ids(), "interpolation-style": style, "time-domain": domain, "state": "Off"}
        )


def _io(parent: ET.Element, name: str, ids: Callable[[], str], direction: str, channels: int) -> None:
    io = ET.SubElement(parent, "IO", {"name": name, "id": ids(), "direction": direction, "default-type": "audio"})
    for c in range(channels):
        kind = "in" if direction == "Input" else "out"
        port = ET.SubElement(io, "Port", {"type": "audio", "name": f"{name}/audio_{kind} {c + 1}"})
        other = f"system:capture_{c + 1}" if direction == "Input" else f"Master/audio_in {c % MASTER_CHANNELS + 1}"
        ET.SubElement(port, "Connection", {"other": other})


def _processor(parent: ET.Element, ids: Callable[[], str], name: str, kind: str, **extra: str) -> ET.Element:
    attrs = {"id": ids(), "name": name, "active": "1", "user-latency": "0", "use-user-latency": "0", "type": kind, **extra}
    return ET.SubElement(parent, "Processor", attrs)


def audio_route(name: str, route_id: str, playlist_id: str, channels: int, order: int, ids: Callable[[], str]) -> ET.Element:
    """A `<Route>` for a new audio track named `name` playing playlist `playlist_id`."""
    route = ET.Element(
        "Route",
        {
            "version": "7002",
            "id": route_id,
            "name": name,
            "default-type": "audio",
            "strict-io": "0",
            "active": "1",
            "denormal-protection": "0",
            "meter-point": "MeterPostFader",
            "disk-io-point": "DiskIOPreFader",
            "meter-type": "MeterPeak",
            "audio-playlist": playlist_id,
            "saved-meter-point": "MeterPostFader",
            "alignment-choice": "Automatic",
            "mode": "Normal",
        },
    )
    ET.SubElement(route, "PresentationInfo", {"order": str(order), "flags": "AudioTrack,OrderSet", "color": "0"})
    ET.SubElement(
        route,
        "Controllable",
        {
            "name": "solo",
            "id": ids(),
            "flags": "Toggle,RealTime",
            "value": "0",
            "self-solo": "0",
            "soloed-by-upstream": "0",
            "soloed-by-downstream": "0",
        },
    )
    ET.SubElement(route, "Controllable", {"name": "solo-iso", "id": ids(), "flags": "Toggle,RealTime", "value": "0", "solo-isolated": "0"})
    ET.SubElement(route, "Controllable", {"name": "solo-safe", "id": ids(), "flags": "Toggle", "value": "0", "solo-safe": "0"})
    _io(route, name, ids, "Input", channels)
    _io(route, name, ids, "Output", channels)
    ET.SubElement(route, "MuteMaster", {"mute-point": "PostFader,Listen,Main", "muted": "0"})
    ET.SubElement(route, "Controllable", {"name": "mute", "id": ids(), "flags": "Toggle,RealTime", "value": "0"})
    ET.SubElement(route, "Controllable", {"name": "phase", "id": ids(), "flags": "Toggle", "value": "0", "phase-invert": "0" * channels})
    discrete = [
        (k, "Discrete", "AudioTime") for k in ("solo", "solo-iso", "solo-safe", "mute", "rec-enable", "rec-safe", "phase", "monitor")
    ]
    _automation(route, ids, discrete)
    pannable = ET.SubElement(route, "Pannable")
    for key, value in (
        ("pan-azimuth", "0.5"),
        ("pan-width", "1" if channels > 1 else "0"),
        ("pan-elevation", "0"),
        ("pan-frontback", "0"),
        ("pan-lfe", "0"),
    ):
        ET.SubElement(pannable, "Controllable", {"name": key, "id": ids(), "flags": "", "value": value})
    _automation(
        pannable, ids, [(k, "Linear", "BeatTime") for k in ("pan-azimuth", "pan-elevation", "pan-width", "pan-frontback", "pan-lfe")]
    )
    _processor(route, ids, f"recorder:{name}", "diskwriter", **{"record-safe": "0"})
    _processor(route, ids, f"player:{name}", "diskreader")
    box = _processor(route, ids, "TriggerBox", "triggerbox", **{"data-type": "audio", "order": "0"})
    triggers = ET.SubElement(box, "Triggers")
    for slot in range(TRIGGER_SLOTS):
        ET.SubElement(triggers, "Trigger", {**TRIGGER, "index": str(slot)})
    _processor(route, ids, "Polarity", "polarity")
    trim = _processor(route, ids, "Amp", "trim")
    _automation(trim, ids, [("trim", "Logarithmic", "AudioTime")])
    ET.SubElement(trim, "Controllable", {"name": "trimcontrol", "id": ids(), "flags": "GainLike", "value": "1"})
    amp = _processor(route, ids, "Amp", "amp")
    _automation(amp, ids, [("gain", "Exponential", "AudioTime")])
    ET.SubElement(amp, "Controllable", {"name": "gaincontrol", "id": ids(), "flags": "GainLike", "value": "1"})
    _processor(route, ids, f"meter-{name}", "meter")
    outs = _processor(route, ids, name, "main-outs", **{"own-input": "1", "own-output": "0", "output": name, "role": "Main"})
    ET.SubElement(outs, "PannerShell", {"bypassed": "0", "user-panner": "", "linked-to-route": "1"})
    ET.SubElement(route, "Slavable")
    ET.SubElement(route, "Controllable", {"name": "monitor", "id": ids(), "flags": "RealTime", "value": "0", "monitoring": ""})
    ET.SubElement(route, "Controllable", {"name": "rec-safe", "id": ids(), "flags": "Toggle,RealTime", "value": "0"})
    ET.SubElement(route, "Controllable", {"name": "rec-enable", "id": ids(), "flags": "Toggle,RealTime", "value": "0"})
    return route
