"""REAPER: a shipped ReaScript (`stemlink_separate.py`, standalone: stdlib only). See README.md here."""
