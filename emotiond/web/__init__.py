"""The web dashboard: one self-contained page, an MJPEG picture, Server-Sent Events and the state JSON.

``backend.WebBackend`` is all it needs from the daemon; ``backend.ContextBackend`` adapts the
component context to it. ``server.WebView`` is the component ``cli`` starts when ``[web] enabled = true``.
"""

from __future__ import annotations

import socket

from emotiond.config import Config


def dashboard_url(config: Config, port: int | None = None) -> str | None:
    """The page's URL for Home Assistant's ``configuration_url``; None while the dashboard is off.

    A wildcard host (0.0.0.0, ::) is replaced by this machine's host name, which is what another
    device on the network can reach; ``port`` is the bound port when the configured one is 0.
    """
    w = config.web
    if not w.enabled:
        return None
    host = w.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn() or socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port if port is not None else w.port}/"
