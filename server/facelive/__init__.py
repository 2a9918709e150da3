"""FaceLive: self-hosted live face recognition."""

__version__ = "0.1.0"
