"""The `pomegranate` process: the gRPC server (grpc.aio) in front of the Docker runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc

from backend.pomegranate import builder
from backend.pomegranate.runtime import Runtime
from backend.pomegranate.service import PomegranateService
from backend.rpc import pomegranate_pb2_grpc as pb_grpc
from backend.rpc.auth import SharedSecretInterceptor
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Build sources arrive in chunks; allow comfortably large ones (the total is capped by the service).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 5.0


def create_server(
    service: PomegranateService, address: str, secret: str | None = None
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with the shared-secret interceptor; returns it and its bound port."""
    server = grpc.aio.server(
        interceptors=[SharedSecretInterceptor(secret)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_PomegranateServicer_to_server(service, server)
    port = server.add_insecure_port(address)
    if not port:
        raise OSError(f"cannot listen on {address}")
    return server, port


def create_runtime(settings: Settings) -> Runtime:
    """The runtime the settings name: one Docker engine (the default) or a Swarm (issue 16)."""
    if settings.runtime == "swarm":
        from backend.pomegranate.swarm_runtime import SwarmRuntime

        return SwarmRuntime(settings)
    from backend.pomegranate.docker_runtime import DockerRuntime

    return DockerRuntime(settings)


async def serve(settings: Settings | None = None, runtime: Runtime | None = None) -> None:
    """Run until SIGINT/SIGTERM, then stop gracefully."""
    s = settings or get_settings()
    if runtime is None:
        runtime = create_runtime(s)
    service = PomegranateService(runtime, s)
    removed = service.clean_tmp()
    if removed:
        log.info("removed %d leftover build source file(s)", removed)
    leftovers = await asyncio.to_thread(builder.clean_leftovers, s)
    if leftovers:
        log.info("removed %d build mount(s) and work dir(s) a killed build left", leftovers)
    server, port = create_server(service, f"{s.host}:{s.pomegranate_port}")
    await server.start()
    log.info("pomegranate listening on %s:%d", s.host, port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("pomegranate stopping")
        await server.stop(SHUTDOWN_GRACE_SECONDS)
        await service.drain()
        await runtime.close()
        # No build runs any more: nothing of one may stay mounted (a build cancelled at the
        # stop may not have reached its own cleanup).
        await asyncio.to_thread(builder.clean_leftovers, s)
