"""Tier 0: decode, mono, resample, normalise, denoise, voice activity detection."""

from vocalis.audio.io import load_audio
from vocalis.audio.tier0 import Tier0Config, run_tier0

__all__ = ["Tier0Config", "load_audio", "run_tier0"]
