"""Run Lua code inside the real Ardour 7 GUI, headless (xvfb), once a session is loaded: how the
tests drive the shipped action script `stemlink.lua` the way a user's click would.

    seconds = run_in_gui(Path("song/song.ardour"), 'Session:save_state ("", false, false, false, false, false)',
                         log=Path("hook.log"))

Each run gets a throw-away Ardour config folder (`XDG_CONFIG_HOME`), so the user's own Ardour
settings are never read or changed. What it holds (established on Ardour 7.3):

- `ardour7/.a7`: Ardour's "been here before" marker (no first-run wizard);
- `ardour7/config`: `hide-dummy-backend` off and `try-autostart-engine` on, plus a saved
  Audio/MIDI setup (`<Extra><AudioMIDISetup><EngineStates><State backend="None (Dummy)" ...
  active="1">`) so the engine starts on the Dummy backend without the setup dialog
  (`ARDOUR_TRY_AUTOSTART_ENGINE=1` as well);
- `ardour7/ui_scripts`: one editor hook (`<ActionHooks><LuaCallback signals=...>`) on the 1 s
  `LuaTimerS` signal (bit 46 of `luasignal_syms.h`'s list). Its content is base64 of the Lua
  state Ardour restores: `s["f"]` is a chunk that, called with the hook's arguments, returns
  the callback; here plain source text (Lua's `load` takes text as well as bytecode). The
  callback runs the given code once, inside `pcall`, and appends `ok`/the error and then
  `DONE` to `log` (hook errors are otherwise silent).

The caller waits for `DONE` in the log (or `timeout`), then Ardour and its X server are killed:
the GUI's own quit path is not needed, the code saves the session itself.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ARDOUR = shutil.which("ardour")
XVFB_RUN = shutil.which("xvfb-run")
LUA_TIMER_S = 46  # index of LuaTimerS in Ardour 7's LuaSignal enum
MISSING = "the Ardour GUI under xvfb needs `ardour`, `xvfb-run` and `xauth` (Debian: ardour xvfb xauth; `bash setup.sh test` installs them)"

ENGINE_CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<Ardour>
  <Config>
    <Option name="hide-dummy-backend" value="0"/>
    <Option name="try-autostart-engine" value="1"/>
  </Config>
  <Extra>
    <AudioMIDISetup>
      <EngineStates>
        <State backend="None (Dummy)" driver="Normal Speed" device="2 in, 2 out, Silence" input-device="" output-device=""
               sample-rate="{rate}" buffer-size="1024" n-periods="0" input-latency="0" output-latency="0" input-channels="0"
               output-channels="0" active="1" use-buffered-io="0" midi-option="" lm-input="" lm-output="" lru="1"/>
      </EngineStates>
    </AudioMIDISetup>
  </Extra>
</Ardour>
"""


class ArdourGuiError(RuntimeError):
    """The GUI could not be run, or the code did not finish in time."""


def lua_string(text: str) -> str:
    """A Lua string literal for any text."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32:
            out.append(f"\\{ord(ch):03d}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def hook_scripts(code: str, log: Path, name: str = "stemlink-gui-hook") -> str:
    """The `ui_scripts` file: no action scripts, one LuaTimerS hook running `code` once."""
    factory = (
        "local args = ...\nlocal fired = false\nreturn function (signal, ref, ...)\n"
        "  if fired then return end\n  fired = true\n"
        f"  local ok, err = pcall (function ()\n{code}\n  end)\n"
        f"  local f = io.open ({lua_string(str(log))}, 'a')\n"
        "  f:write ('ok ' .. tostring (ok) .. ' ' .. tostring (err) .. '\\nDONE\\n')\n  f:close ()\nend\n"
    )
    header = f'ardour {{ ["type"] = "EditorHook", name = {lua_string(name)} }}'
    state = f's = {{}} s["n"] = {lua_string(name)} s["s"] = {lua_string(header)} s["f"] = {lua_string(factory)} s["a"] = {{}} '
    hooked = base64.b64encode(state.encode()).decode()
    actions = base64.b64encode(b"scripts = {} ").decode()
    signals = "1" + "0" * LUA_TIMER_S
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<UIScripts>\n'
        f'  <ActionScript lua="Lua 5.3">{actions}</ActionScript>\n'
        f'  <ActionHooks>\n    <LuaCallback lua="Lua 5.3" id="4242" name="{name}" signals="{signals}">{hooked}</LuaCallback>\n'
        "  </ActionHooks>\n</UIScripts>\n"
    )


def run_in_gui(
    session: Path, code: str, *, log: Path, rate: int = 48000, timeout: float = 180, env: Mapping[str, str] | None = None
) -> float:
    """Open `session` in the Ardour GUI under xvfb, run `code` once from a hook; returns the wall
    seconds until the hook logged DONE. `ArdourGuiError` if it did not, with the log's tail."""
    if ARDOUR is None or XVFB_RUN is None or shutil.which("xauth") is None:
        raise ArdourGuiError(MISSING)
    log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="stemlink-ardour-gui-") as tmp:
        config = Path(tmp) / "ardour7"
        config.mkdir()
        (config / ".a7").touch()
        (config / "config").write_text(ENGINE_CONFIG.format(rate=rate))
        (config / "ui_scripts").write_text(hook_scripts(code, log))
        run_env = {**os.environ, **(env or {}), "XDG_CONFIG_HOME": tmp, "ARDOUR_TRY_AUTOSTART_ENGINE": "1"}
        output = Path(tmp) / "ardour.out"
        started = time.monotonic()
        with open(output, "w") as out:
            proc = subprocess.Popen(
                [XVFB_RUN, "-a", ARDOUR, "-a", "-n", str(session)],
                env=run_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            while time.monotonic() - started < timeout:
                if log.exists() and "DONE" in log.read_text(errors="replace"):
                    return time.monotonic() - started
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        tail = output.read_text(errors="replace")[-2000:]
    state = f"exit {proc.returncode}" if proc.returncode is not None else f"no DONE after {timeout:.0f} s"
    raise ArdourGuiError(f"Ardour GUI run: {state}; hook log: {log.read_text() if log.exists() else '(none)'}; output: {tail}")
