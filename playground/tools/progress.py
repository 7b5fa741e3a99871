"""The progress bar lives in the engine (``playground._progress``) because sweeps use it too;
this name stays for the tools that import it from here."""
from .._progress import ProgressBar, progress_bar, track

__all__ = ["progress_bar", "ProgressBar", "track"]
