"""The tracker of `facelive video`, now shared with the live server: see
facelive.recognition.tracks (kept here so that existing imports go on working)."""

from facelive.recognition.tracks import Observation, TrackedFace, Tracker, iou

__all__ = ["Observation", "TrackedFace", "Tracker", "iou"]
