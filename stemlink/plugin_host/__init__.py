"""The thin DAW side: regions in, spotted BWF stems out (presets, FX chains, sessions, audition)."""
