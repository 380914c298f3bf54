"""One verifying SSL context per test process.

httpx loads the whole CA bundle for every client it makes (0.1-0.15 s of CPU), and the test
helpers make a client per request (tests/support/gqlclient.Api) or per poll (servers.wait_http):
thousands of loads per run, on a 2-core machine. A context is safe to share between clients."""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def ssl_context() -> ssl.SSLContext:
    """httpx's own default (SSL_CERT_FILE, SSL_CERT_DIR or certifi), made once."""
    return httpx.create_ssl_context()
