"""The platform image registry's HTTP API (CNCF Distribution), as Pomegranate uses it: list a
project's tags, resolve and delete manifests (retention). Deleting a manifest frees nothing on
disk by itself: `docker-registry garbage-collect` does (docs/architecture.md)."""

from __future__ import annotations

import aiohttp

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
    """aiohttp, which Pomegranate loads for the engine already (aiodocker): httpx would bring
    its own stack and its CLI's (rich, pygments, click), about 5 MB (issue 17)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def _client(self) -> aiohttp.ClientSession:
        s = self.settings
        return aiohttp.ClientSession(
            base_url=f"http://{s.registry_address}",
            headers={
                "Authorization": aiohttp.encode_basic_auth(
                    s.registry_username, s.resolved_registry_password()
                )
            },
            timeout=aiohttp.ClientTimeout(total=30),
            raise_for_status=False,
        )

    @staticmethod
    def repository(project: str) -> str:
        return f"paastech/app-{project}"

    async def tags(self, project: str) -> dict[str, str]:
        """Tag -> manifest digest of the project's repository (empty when it has none)."""
        repo = f"/v2/{self.repository(project)}"
        async with self._client() as client:
            async with client.get(f"{repo}/tags/list") as response:
                if response.status == 404:
                    return {}
                response.raise_for_status()
                listed = await response.json()
            result: dict[str, str] = {}
            for tag in listed.get("tags") or []:
                async with client.head(
                    f"{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
                ) as head:
                    digest = head.headers.get("Docker-Content-Digest")
                    if head.status == 200 and digest:
                        result[tag] = digest
            return result

    async def has(self, project: str, digest: str) -> bool:
        async with (
            self._client() as client,
            client.head(
                f"/v2/{self.repository(project)}/manifests/{digest}",
                headers={"Accept": MANIFEST_TYPES},
            ) as head,
        ):
            return head.status == 200

    async def tag(self, project: str, digest: str, tag: str) -> bool:
        """Point ``tag`` at the manifest ``digest`` (the same bytes, so the same digest); False
        when the registry no longer has that manifest."""
        path = f"/v2/{self.repository(project)}/manifests"
        async with self._client() as client:
            async with client.get(f"{path}/{digest}", headers={"Accept": MANIFEST_TYPES}) as got:
                if got.status == 404:
                    return False
                got.raise_for_status()
                body = await got.read()
                media_type = got.headers.get("Content-Type", "")
            async with client.put(
                f"{path}/{tag}", data=body, headers={"Content-Type": media_type}
            ) as put:
                put.raise_for_status()
                return put.headers.get("Docker-Content-Digest", digest) == digest

    async def delete(self, project: str, digest: str) -> None:
        """Delete a manifest (every tag pointing at it goes too); a missing one is fine."""
        async with (
            self._client() as client,
            client.delete(f"/v2/{self.repository(project)}/manifests/{digest}") as response,
        ):
            if response.status not in (202, 404):
                response.raise_for_status()
