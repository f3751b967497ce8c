ardour {
	["type"]    = "EditorAction",
	name        = "stemlink: stems of the selected regions",
	license     = "MIT",
	author      = "stemlink",
	description = [[Sends the selected audio regions to stemlink (separate or accompany) and
imports every returned stem on a new track named "REGION - STEM", at the region's exact
timeline position. The session is saved first: stemlink reads the regions from the saved
session file. Needs the `stemlink` command (README: "Ardour").]]
}

function action_params ()
	return {
		["command"] = { title = "stemlink command (a shell command: path, or name on PATH)", default = "stemlink" },
		["task"]    = { title = "Task: separate or accompany", default = "separate" },
		["options"] = { title = "More options, e.g. --model NAME --stems bass,drums --context-stems bass,drums", default = "", optional = true },
	}
end

function factory (params) return function ()
	local p = params or {}
	local command = p["command"] or os.getenv ("STEMLINK_COMMAND") or "stemlink"
	local task = p["task"] or "separate"
	local options = p["options"] or ""

	local function quote (s) return "'" .. string.gsub (tostring (s), "'", "'\\''") .. "'" end
	local function tell (text)
		print ("stemlink: " .. text)
		if LuaDialog and not os.getenv ("STEMLINK_NO_DIALOG") then
			LuaDialog.Message ("stemlink", text, LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run ()
		end
	end

	if task ~= "separate" and task ~= "accompany" then
		tell ("task must be separate or accompany, not " .. task)
		return
	end

	local ids = {}
	for r in Editor:get_selection ().regions:regionlist ():iter () do
		if not r:to_audioregion ():isnil () then
			table.insert (ids, r:to_stateful ():id ():to_s ())
		end
	end
	if #ids == 0 then
		tell ("select one or more audio regions first")
		return
	end

	-- stemlink reads the regions (sources, offsets, positions, gain) from the session file
	Session:save_state ("", false, false, false, false, false)
	local session_file = ARDOUR.LuaAPI.build_filename (Session:path (), Session:snap_name () .. ".ardour")

	-- the stems are written under the session folder (with their provenance .json sidecars,
	-- which stay there); Ardour copies each WAV into the session on import, the copy is removed
	local work = ARDOUR.LuaAPI.build_filename (Session:path (), "stemlink", os.date ("!%Y%m%dT%H%M%S"))
	local tmp = os.tmpname ()
	local manifest, errors = tmp .. ".tsv", tmp .. ".err"
	local args = { command, "daw ardour", quote (session_file), "--task", quote (task), "--stems-only", quote (work), "--regions" }
	for _, id in ipairs (ids) do table.insert (args, quote (id)) end
	local cmd = table.concat (args, " ") .. " " .. options .. " > " .. quote (manifest) .. " 2> " .. quote (errors)
	print ("stemlink: " .. cmd)
	os.execute (cmd) -- Ardour's os.execute waits, but returns no exit status: the manifest says what came back

	local imported, names = 0, {}
	local f = io.open (manifest, "r")
	if f then
		for line in f:lines () do
			local pos, len, name, file = string.match (line, "^(%d+)\t(%d+)\t([^\t]+)\t(.+)$")
			if pos then
				local files = C.StringVector ()
				files:push_back (file)
				local before = {}
				for t in Session:get_tracks ():iter () do before[t:to_stateful ():id ():to_s ()] = true end
				Editor:do_import (files, Editing.ImportDistinctFiles, Editing.ImportAsTrack, ARDOUR.SrcQuality.SrcBest,
					ARDOUR.MidiTrackNameSource.SMFTrackName, ARDOUR.MidiTempoMapDisposition.SMFTempoIgnore,
					Temporal.timepos_t (tonumber (pos)), ARDOUR.PluginInfo (), ARDOUR.Track (), false)
				for t in Session:get_tracks ():iter () do -- the new track: name it after region and stem
					if not before[t:to_stateful ():id ():to_s ()] then t:set_name (name) end
				end
				imported = imported + 1
				table.insert (names, name)
				os.remove (file)
			end
		end
		f:close ()
	end

	if imported == 0 then
		local why = ""
		local e = io.open (errors, "r")
		if e then why = e:read ("a") or ""; e:close () end
		tell ("no stems came back.\n" .. why)
	else
		Session:save_state ("", false, false, false, false, false)
		print ("stemlink: imported " .. imported .. " stem(s): " .. table.concat (names, ", "))
	end
	os.remove (manifest)
	os.remove (errors)
	os.remove (tmp)
end end
