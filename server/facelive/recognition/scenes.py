"""Scene cuts in a video: where the picture changes at once, so that no face track (and no
name) is carried from one shot into the next.

A cut is a jump in the frame's colour distribution: the Bhattacharyya distance between the
hue/saturation histograms of consecutive frames (at 160x90, so it costs well under a
millisecond). On short_hamilton_clip.mp4 its three hard cuts score 0.40-0.49 and every other
frame pair at most 0.15 (camera pans, people moving, stage light), hence the 0.3 default.
"""

from __future__ import annotations

import cv2
import numpy as np

CUT_DISTANCE = 0.3


class CutDetector:
    """One per stream. rgb: frames come as RGB (the live server's), not BGR (OpenCV's)."""

    def __init__(self, threshold: float = CUT_DISTANCE, rgb: bool = False) -> None:
        self.threshold = threshold
        self._to_hsv = cv2.COLOR_RGB2HSV if rgb else cv2.COLOR_BGR2HSV
        self._previous: np.ndarray | None = None

    def is_cut(self, frame: np.ndarray) -> bool:
        """Feed every frame in order; True when this frame starts a new shot (never for the
        first frame)."""
        small = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, self._to_hsv)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
        previous, self._previous = self._previous, hist
        if previous is None:
            return False
        return cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA) > self.threshold
