"""Credential redaction: the pure function on many URL shapes, and the logging filter on real records."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest
from emotiond.config import ConfigError, config_from_mapping
from emotiond.events import ErrorEvent
from emotiond.redact import RedactingFilter, redact
from emotiond.sources.camera import SourceError, open_source
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(("text", "expected"), [
    ("rtsp://user:s3cret@10.0.0.5:554/stream", "rtsp://***@10.0.0.5:554/stream"),
    ("camera 'rtsp://admin:pa%40ss@cam/h264' failed", "camera 'rtsp://***@cam/h264' failed"),
    ("http://u:p@ss:w/rd@cam.local/video", "http://***@cam.local/video"),  # unescaped '@' and '/' in it
    ("mqtts://bob@broker:8883", "mqtts://***@broker:8883"),
    ("http://cam/snap.jpg?user=a&password=hunter2&res=hd", "http://cam/snap.jpg?user=a&password=***&res=hd"),
    ("http://cam/v?TOKEN=abc;x=1 and http://c/v?api_key=k#frag", "http://cam/v?TOKEN=***;x=1 and http://c/v?api_key=***#frag"),
    ("http://cam/v?auth_token=zz&monkey=ok", "http://cam/v?auth_token=***&monkey=ok"),
    ("no url here, password=x", "no url here, password=x"),
    ("rtsp://cam.local/stream and /dev/video0", "rtsp://cam.local/stream and /dev/video0"),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


# Any password that can stand in a URL at all: no whitespace, no quotes/brackets ending the token.
@given(st.text(alphabet=st.characters(blacklist_characters="'\"<>`@", blacklist_categories=("Z", "C"),
                                      min_codepoint=33, max_codepoint=0x2FF), min_size=3, max_size=30))
def test_any_password_in_userinfo_is_removed(password: str) -> None:
    out = redact(f"open rtsp://user:{password}@192.168.1.9/live failed")
    assert password not in out
    assert out.endswith("@192.168.1.9/live failed")


def test_logging_filter_covers_args_exceptions_and_other_loggers() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_redact.some.module")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("camera %r failed", "rtsp://user:s3cretpw@cam/stream")
        try:
            raise SourceError("x") from RuntimeError("cv2 could not open rtsp://user:s3cretpw@cam")
        except SourceError:
            logger.exception("with a traceback naming http://cam/v?token=s3cretpw")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "s3cretpw" not in text
    assert "rtsp://***@cam/stream" in text and "Traceback" in text


def test_error_event_source_error_and_config_error_are_redacted() -> None:
    assert ErrorEvent("camera", "rtsp://a:s3cretpw@h/x down").message == "rtsp://***@h/x down"
    with pytest.raises(SourceError) as exc:
        open_source("rtsp://user:s3cretpw@127.0.0.1:9/stream")  # refused at once: nothing listens on port 9
    assert "s3cretpw" not in str(exc.value) and "rtsp://***@127.0.0.1:9/stream" in str(exc.value)
    with pytest.raises(ConfigError) as cexc:
        config_from_mapping({"camera": {"source": "rtsp://user:s3cretpw@cam", "fps": "fast"}, "x": 1})
    assert "s3cretpw" not in str(cexc.value)
    with pytest.raises(ConfigError) as cexc:
        config_from_mapping({"camera": {"width": "rtsp://user:s3cretpw@cam"}})
    assert "s3cretpw" not in str(cexc.value) and "***@cam" in str(cexc.value)


def test_uncaught_exceptions_in_threads_are_printed_redacted() -> None:
    code = (
        "import threading, logging\n"
        "from emotiond import redact\n"
        "logging.basicConfig()\n"
        "redact.install()\n"
        "def boom():\n"
        "    raise RuntimeError('cannot open rtsp://u:s3cretpw@cam/x')\n"
        "t = threading.Thread(target=boom, name='worker'); t.start(); t.join()\n"
        "boom()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "s3cretpw" not in result.stderr
    assert "Exception in thread worker" in result.stderr and result.stderr.count("rtsp://***@cam/x") == 2
