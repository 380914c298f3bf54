"""Reflex configuration of the PaaSTech web app.

Everything listens on 127.0.0.1 (PAASTECH_HOST) and on one port, PAASTECH_WEB_PORT (3000):
`reflex run --env prod` serves the built frontend and the backend's websocket together.
The app reads the API's address from PAASTECH_API_URL, else PAASTECH_HOST/PAASTECH_API_PORT.
"""

import os

import reflex as rx

host = os.environ.get("PAASTECH_HOST", "127.0.0.1") or "127.0.0.1"
port = int(os.environ.get("PAASTECH_WEB_PORT", "3000") or "3000")

config = rx.Config(
    app_name="paastech_web",
    backend_host=host,
    frontend_port=port,
    backend_port=port,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
