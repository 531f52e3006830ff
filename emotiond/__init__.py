"""emotiond: a headless emotion-recognition daemon for Raspberry Pi-class devices."""

__version__ = "0.1.0"
