"""PeakMixer: peak feature extractors + 2D MLP feature mixer + interpretable path for vibrational spectra."""

__version__ = "0.1.0"
