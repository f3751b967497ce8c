"""Scripts and session bridges for specific DAWs (each runs beside the DAW, not inside the engine)."""
