"""Scene cuts of `facelive video`, now shared with the live server: see
facelive.recognition.scenes (kept here so that existing imports go on working)."""

from facelive.recognition.scenes import CUT_DISTANCE, CutDetector

__all__ = ["CUT_DISTANCE", "CutDetector"]
