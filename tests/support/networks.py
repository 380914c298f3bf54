"""Docker network churn: what makes Docker 20.10 rewrite its filter rules under running traffic."""

from __future__ import annotations

import secrets
import uuid

import aiodocker


async def churn(docker: aiodocker.Docker, cycles: int) -> None:
    """Create and remove ``cycles`` bridge networks on the engine, as any tenant's first deploy
    does: each time, Docker 20.10 deletes and re-inserts its FORWARD jump to its isolation chain
    (the gap scripts/project-network-firewall.sh closes)."""
    made = tries = 0
    while made < cycles:
        tries += 1
        assert tries <= cycles * 5, "no free subnet for the churn networks"
        name = f"churn-{uuid.uuid4().hex[:12]}"
        # A subnet nothing of the platform uses; another run's churn may hold it: try another.
        subnet = f"10.222.{secrets.randbelow(256)}.{16 * secrets.randbelow(16)}/28"
        try:
            network = await docker.networks.create(
                {"Name": name, "IPAM": {"Config": [{"Subnet": subnet}]}}
            )
        except aiodocker.DockerError as exc:
            if "overlap" in exc.message.lower():
                continue
            raise
        await network.delete()
        made += 1
