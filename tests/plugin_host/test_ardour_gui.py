"""Tier 2 of the Ardour round trip: the shipped Lua action script (`stemlink.lua`) inside the
real Ardour GUI (xvfb, Dummy backend, throw-away config; `stemlink/plugin_host/daw/ardour/gui.py`)
on a selected region, as a user would run it; then Ardour's headless tools reload and render
the saved session (positions, lengths, null test). About 15-30 s."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from stemlink.lab.export.echo import build_echo_export
from stemlink.lab.nn.echo import ECHO_STEMS
from stemlink.plugin_host.daw.ardour import gui
from stemlink.plugin_host.daw.ardour.gui import lua_string, run_in_gui
from stemlink.plugin_host.daw.ardour.headless import EXPORT, LUA, MISSING, export, list_regions, mute_regions, session_with_region

SCRIPT = Path(__file__).resolve().parents[2] / "stemlink" / "plugin_host" / "daw" / "ardour" / "stemlink.lua"
POSITION = 48000 + 17
OFFSET = 4800
LENGTH = 96000

pytestmark = [
    pytest.mark.skipif(LUA is None or EXPORT is None, reason=MISSING),
    pytest.mark.skipif(gui.ARDOUR is None or gui.XVFB_RUN is None, reason=gui.MISSING),
]


def select_and_run(track: str, command: str, task: str, options: str, log: Path) -> str:
    """Lua for the hook: select every region of `track` in the editor, then run the shipped
    action script's own function, unchanged, with these parameters; save. The script's
    `print` lines go to `log`."""
    return f"""
    print = function (...)
      local f = io.open ({lua_string(str(log))}, "a")
      local parts = {{}}
      for i = 1, select ("#", ...) do parts[i] = tostring (select (i, ...)) end
      f:write (table.concat (parts, " ") .. "\\n")
      f:close ()
    end
    local sl = ArdourUI.SelectionList ()
    for t in Session:get_tracks ():iter () do
      if t:name () == {lua_string(track)} then
        for r in t:to_track ():playlist ():region_list ():iter () do sl:push_back (Editor:regionview_from_region (r)) end
      end
    end
    Editor:set_selection (sl, ArdourUI.SelectionOp.Set)
    assert (Editor:get_selection ().regions:regionlist ():size () == 1, "region not selected")
    function ardour (info) end  -- the script's header
    local chunk = assert (loadfile ({lua_string(str(SCRIPT))}))
    chunk ()
    factory ({{ command = {lua_string(command)}, task = {lua_string(task)}, options = {lua_string(options)} }}) ()
    Session:save_state ("", false, false, false, false, false)
    """


def test_the_lua_script_in_the_gui_imports_stems_that_null_against_the_region(tmp_path, monkeypatch):
    exports = build_echo_export(tmp_path / "exports", sample_rate=16000, window=8192, delay=3, formats=("torchscript",))
    x = (0.1 * np.random.default_rng(2).standard_normal((2, OFFSET + LENGTH + 1000))).astype(np.float32)
    session, _ = session_with_region(tmp_path, "song", 48000, x, 44100, position=POSITION, offset=OFFSET, length=LENGTH)
    before, _ = export(session, tmp_path / "before.wav")

    command = f"{shlex.quote(sys.executable)} -m stemlink"
    env = {"STEMLINK_EXPORTS": str(exports), "STEMLINK_NO_DIALOG": "1", "STEMLINK_ENGINE": "embedded", "PYTHONPATH": str(SCRIPT.parents[4])}
    log = tmp_path / "hook.log"
    run_in_gui(session, select_and_run("mix", command, "separate", "--model echo", log), log=log, env=env)
    assert "ok true nil" in log.read_text(), log.read_text()

    rows = list_regions(session)
    assert rows[0] == ("mix", "mix.1", POSITION, LENGTH, OFFSET)
    stems = {track: (pos, n, start) for track, _, pos, n, start in rows[1:]}
    assert stems == {f"mix.1 - {stem}": (POSITION, LENGTH, 0) for stem in ECHO_STEMS}

    (work,) = (session.parent / "stemlink").iterdir()  # provenance stays with the session; the WAVs Ardour copied are gone
    assert sorted(p.name for p in work.iterdir()) == sorted(f"mix-mix.1-{stem}.json" for stem in ECHO_STEMS)

    mute_regions(session, ["mix"])
    after, _ = export(session, tmp_path / "after.wav")
    assert after.shape == before.shape
    residual = 10 * np.log10(np.sum((before - after) ** 2) / np.sum(before**2))
    assert residual <= -60, residual
    span = slice(POSITION, POSITION + LENGTH)
    lags = range(-32, 33)
    best = max(lags, key=lambda k: float(np.sum(before[:, span] * np.roll(after, k, axis=1)[:, span])))
    assert best == 0


def test_selected_reads_the_selection_ardour_saved(tmp_path, monkeypatch):
    """Select a region in the GUI and save as a user does (Session > Save: the `Common/Save`
    action); after Ardour is gone, `stemlink daw ardour --selected` separates that region."""
    from stemlink.cli import main
    from stemlink.plugin_host.daw.ardour.roundtrip import selected_ids
    from stemlink.plugin_host.daw.ardour.session import read_session

    exports = build_echo_export(tmp_path / "exports", sample_rate=16000, window=8192, delay=3, formats=("torchscript",))
    x = (0.1 * np.random.default_rng(3).standard_normal((2, OFFSET + LENGTH + 1000))).astype(np.float32)
    session, _ = session_with_region(tmp_path, "song", 48000, x, 44100, position=POSITION, offset=OFFSET, length=LENGTH)
    select = """
    local sl = ArdourUI.SelectionList ()
    for t in Session:get_tracks ():iter () do
      for r in t:to_track ():playlist ():region_list ():iter () do sl:push_back (Editor:regionview_from_region (r)) end
    end
    Editor:set_selection (sl, ArdourUI.SelectionOp.Set)
    Editor:access_action ("Common", "Save")
    """
    run_in_gui(session, select, log=tmp_path / "hook.log")
    assert "ok true nil" in (tmp_path / "hook.log").read_text()
    saved = read_session(session)
    assert len(saved.regions) == 1 and selected_ids(saved) == [saved.regions[0].id]

    monkeypatch.setenv("STEMLINK_EXPORTS", str(exports))
    monkeypatch.delenv("STEMLINK_ENGINE", raising=False)
    assert main(["daw", "ardour", str(session), "--selected", "--model", "echo", "--stems", "bass"]) == 0
    assert [row[0] for row in list_regions(session)] == ["mix", "mix.1 - bass"]
