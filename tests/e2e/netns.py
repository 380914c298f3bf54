"""Chromium in a network namespace of its own, with the web app's port carried into it.

Chromium aborts every request in flight with net::ERR_NETWORK_CHANGED when the host's network
changes. The platform under test changes it all the time: each project gets a Docker network (a
bridge with an address), containers bring veths up and down, the Swarm tests build namespaces.
Pages then lost a script or their websocket mid-test and sat half-loaded ("at /login").

So Chromium runs under `unshare --net` (its own loopback only, none of the host's changes) and
talks to chromedriver over a pipe (--remote-debugging-pipe), not a port. `forward(port)` opens
127.0.0.1:port inside that namespace and relays each connection to 127.0.0.1:port on the host,
where the web app listens: the browser sees the same URLs as before."""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import socket
import stat
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
CHROMIUM = "/usr/bin/chromium"


def launcher(directory: Path) -> Path:
    """An executable that starts Chromium in a new network namespace with loopback up (exec all
    the way, so chromedriver's child *is* Chromium and its pid names the namespace)."""
    path = directory / "chromium-netns"
    path.write_text(
        "#!/bin/sh\n"
        'exec unshare --net -- sh -c \'ip link set lo up && exec "$0" "$@"\''
        f' {CHROMIUM} "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def browser_namespace(chromedriver_pid: int) -> str:
    """/proc path of the network namespace of chromedriver's Chromium."""
    # Any of chromedriver's threads may have started it: each thread lists its own children.
    children = " ".join(
        path.read_text() for path in Path(f"/proc/{chromedriver_pid}/task").glob("*/children")
    )
    for pid in children.split():
        ns = f"/proc/{pid}/ns/net"
        if os.readlink(ns) != os.readlink("/proc/self/ns/net"):
            return ns
    raise RuntimeError(f"no Chromium in its own network namespace under pid {chromedriver_pid}")


def _listen_in(namespace: str, port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port inside `namespace`. A socket keeps the namespace it
    was made in, so a short-lived thread enters the namespace (setns is per thread), makes it
    and ends; this process stays in the host's."""
    made: dict[str, socket.socket | BaseException] = {}

    def enter_and_bind() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(namespace, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {namespace}")
            finally:
                os.close(fd)
            made["socket"] = socket.create_server(("127.0.0.1", port))
        except BaseException as exc:  # reported by the caller
            made["error"] = exc

    thread = threading.Thread(target=enter_and_bind, name="netns-bind")
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]  # type: ignore[misc]
    return made["socket"]  # type: ignore[return-value]


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in sel.select():
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        sel.close()
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.close()


def forward(namespace: str, port: int) -> socket.socket:
    """Relay 127.0.0.1:port in the browser's namespace to 127.0.0.1:port here. Returns the
    listening socket (closing it stops accepting)."""
    listener = _listen_in(namespace, port)

    def serve() -> None:
        while True:
            try:
                inside, _ = listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", port))
            except OSError:
                inside.close()
                continue
            threading.Thread(target=_pipe, args=(inside, outside), daemon=True).start()

    threading.Thread(target=serve, name=f"netns-forward-{port}", daemon=True).start()
    return listener
