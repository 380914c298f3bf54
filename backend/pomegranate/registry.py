"""The platform image registry's HTTP API (CNCF Distribution), as Pomegranate uses it: list a
project's tags, resolve and delete manifests (retention). Deleting a manifest frees nothing on
disk by itself: `docker-registry garbage-collect` does (docs/architecture.md)."""

from __future__ import annotations

import httpx

from backend.settings import Settings

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


class Registry:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _client(self) -> httpx.AsyncClient:
        s = self.settings
        return httpx.AsyncClient(
            base_url=f"http://{s.registry_address}/v2/",
            auth=(s.registry_username, s.resolved_registry_password()),
            timeout=30,
        )

    @staticmethod
    def repository(project: str) -> str:
        return f"paastech/app-{project}"

    async def tags(self, project: str) -> dict[str, str]:
        """Tag -> manifest digest of the project's repository (empty when it has none)."""
        repo = self.repository(project)
        async with self._client() as client:
            response = await client.get(f"{repo}/tags/list")
            if response.status_code == 404:
                return {}
            response.raise_for_status()
            result: dict[str, str] = {}
            for tag in response.json().get("tags") or []:
                head = await client.head(
                    f"{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
                )
                if head.status_code == 200 and head.headers.get("Docker-Content-Digest"):
                    result[tag] = head.headers["Docker-Content-Digest"]
            return result

    async def has(self, project: str, digest: str) -> bool:
        async with self._client() as client:
            head = await client.head(
                f"{self.repository(project)}/manifests/{digest}",
                headers={"Accept": MANIFEST_TYPES},
            )
            return head.status_code == 200

    async def delete(self, project: str, digest: str) -> None:
        """Delete a manifest (every tag pointing at it goes too); a missing one is fine."""
        async with self._client() as client:
            response = await client.delete(f"{self.repository(project)}/manifests/{digest}")
            if response.status_code not in (202, 404):
                response.raise_for_status()
