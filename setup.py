"""Packaging for emotiond; runtime dependencies are only what a Pi needs to run the daemon."""

from glob import glob

from setuptools import find_packages, setup

setup(
    name="emotiond",
    version="0.1.0",
    description="Headless emotion-recognition daemon for Raspberry Pi-class devices (face + voice, MQTT)",
    python_requires=">=3.11",
    packages=find_packages(include=["emotiond", "emotiond.*"]),
    package_data={"emotiond": ["schemas/*.json", "web/page.html"]},
    data_files=[
        ("share/emotiond/models", sorted(glob("models/*.tflite") + glob("models/*.json") + glob("models/*.npz") + glob("models/*.md"))),
        ("share/emotiond", ["config.toml"]),
        ("share/emotiond/samples", sorted(glob("samples/*"))),
    ],
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.10,<5",
        "paho-mqtt>=2,<3",
        "python_speech_features>=0.6",
        "scipy>=1.10",  # resampling, DCT and windows; python_speech_features needs it too (undeclared)
        "webrtcvad-wheels>=2.0.14",
        # LiteRT has cp311 wheels for x86-64 and aarch64; where it is missing or crashes, install
        # tflite-runtime (with numpy<2) instead: emotiond.models picks whichever imports.
        "ai-edge-litert>=2.3; platform_machine in 'x86_64 aarch64 AMD64 arm64'",
    ],
    extras_require={
        "gpio": ["gpiozero>=2.0"],
        "display": ["luma.oled>=3.13", "pillow>=10"],
        "pi": ["pyaudio>=0.2.13"],
        "tflite-runtime": ["tflite-runtime>=2.14", "numpy<2", "opencv-python-headless>=4.10,<4.11"],
        "dev": [
            "pytest>=8",
            "jsonschema>=4.20",
            "scikit-image>=0.22",
            "gpiozero>=2.0",
            "luma.oled>=3.13",
            "luma.emulator>=1.5",
            "pillow>=10",
            "librosa>=0.10",  # only to check our numpy features against it
            "ruff>=0.6",
            "mypy>=1.11",
            "hypothesis>=6.100",
        ],
    },
    entry_points={"console_scripts": ["emotiond=emotiond.cli:main"]},
)
