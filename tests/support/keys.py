"""Real OpenSSH public keys for tests, made with asyncssh."""

from __future__ import annotations

import asyncssh


def new_public_key(alg: str = "ssh-ed25519", comment: str = "test@paastech") -> str:
    key = asyncssh.generate_private_key(alg, comment=comment)
    return key.export_public_key("openssh").decode().strip()
