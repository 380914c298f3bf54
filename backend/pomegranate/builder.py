"""The isolated builder (issue 10): every tenant build runs in rootful buildah, never on the Docker
engine the platform trusts, and its result goes to the platform registry.

Per build:

* **Storage of the project's own** (``<data dir>/builder/projects/<project>``): its layer cache
  (``--layers``) and its images. Another project's storage is never named, so its images cannot
  be a ``FROM``, a stage or a ``COPY --from`` source. The platform's base images come from a
  separate store mounted read-only (containers-storage ``imagestore``), filled from the Docker
  engine by the platform itself.
* **A signature policy** that rejects every image transport but ``docker://`` (a public registry,
  named explicitly): ``FROM docker-daemon:...``, ``containers-storage:[...]``, ``oci:``, ``dir:``
  would otherwise let a build read the engine's or the disk's images. The platform registry needs
  credentials the build does not have.
* **RUN steps** run in runc with no capabilities, no-new-privileges, in a cgroup whose memory,
  CPU and PID limits come from settings, a file-size rlimit, on the build network (a CNI bridge
  that scripts/build-network.sh firewalls off from the host and private addresses). A watchdog
  stops the build when the project's storage grows past ``build_disk_mb``; ``build_timeout_seconds``
  bounds the wall time. When a limit is hit, the failure names it.
* **The host CA bundle** is bind-mounted read-only at build time only, and the variables that point
  tools at it are added to the RUN processes by the runtime wrapper (never to the image config).
* **Labels**: everything but ``org.opencontainers.*`` is stripped from the result, and the build
  output says which labels were removed.
* **Output**: pushed to the platform registry; the image reference is
  ``127.0.0.1:<port>/paastech/app-<project>@sha256:<digest>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiodocker
import aiohttp

from backend import deploy_output
from backend.pomegranate.build_context import extract_context
from backend.pomegranate.build_reuse import Reused, ReuseRecords, build_key
from backend.pomegranate.buildpacks import DOCKERFILE, BuildPlan, runtime_table
from backend.pomegranate.registry import Registry
from backend.pomegranate.runtime import BuildError, LogCallback, SourceTar
from backend.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
BUILD_LOG_KEEP = 20
RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUILD_NETWORK = "paastech-build"
BUILD_BRIDGE = "pt-build0"
CA_MOUNT = "/run/paastech/ca-certificates.crt"
# Variables tools read to find CA certificates; set for RUN steps only.
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
# Labels an image may carry: OCI metadata. Everything else (traefik.*, paastech.*, ...) is
# stripped, because Docker copies image labels onto containers and routers trust those.
ALLOWED_LABEL_PREFIXES = ("org.opencontainers.",)
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
WATCH_INTERVAL = 0.5
_STEP = re.compile(r"^STEP \d+/\d+: ")
_network_ready = False


def label_allowed(key: str) -> bool:
    return key.startswith(ALLOWED_LABEL_PREFIXES)


def forbidden_labels(labels: dict[str, str] | None) -> list[str]:
    """The labels an image must not carry (sorted)."""
    return sorted(k for k in (labels or {}) if not label_allowed(k))


def repository(settings: Settings, project: str) -> str:
    return f"{settings.registry_address}/paastech/app-{project}"


@dataclass(slots=True)
class BuildOutput:
    image: str  # registry/paastech/app-<project>@sha256:...
    digest: str  # sha256:...
    stripped_labels: list[str]
    # Uncompressed, as `docker images` shows it: the registry's figure depends on which copy of
    # a shared base layer (plain or gzip, from any earlier push) the push happened to reuse.
    size_bytes: int = 0


class _Limit(Exception):
    """A watchdog stopped the build; ``reason`` names the limit."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# ------------------------------------------------------------------------------------ cgroups


class BuildCgroup:
    """A cgroup (v1 or v2) holding every RUN step of one build, with the build's limits.

    buildah/runc put each step's container in a child of it (``--cgroup-parent``); the limits
    here bound the children together, and the counters tell which limit a failed step hit.
    """

    V1_CONTROLLERS = ("memory", "pids", "cpu")

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self.v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        self.relative = f"/paastech-build/{name}"

    def _dirs(self) -> list[Path]:
        if self.v2:
            return [Path("/sys/fs/cgroup") / self.relative.lstrip("/")]
        return [Path("/sys/fs/cgroup") / c / self.relative.lstrip("/") for c in self.V1_CONTROLLERS]

    @property
    def parent(self) -> str:
        return f"{self.relative}/run"

    def create(self) -> None:
        s = self.settings
        memory = s.build_memory_mb * 1024 * 1024
        quota = int(s.build_cpu * 100_000)
        if self.v2:
            base = Path("/sys/fs/cgroup/paastech-build")
            base.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):
                Path("/sys/fs/cgroup/cgroup.subtree_control").write_text("+memory +pids +cpu")
            with contextlib.suppress(OSError):
                (base / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            d = self._dirs()[0]
            d.mkdir(exist_ok=True)
            (d / "memory.max").write_text(str(memory))
            with contextlib.suppress(OSError):
                (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(s.build_pids_limit))
            (d / "cpu.max").write_text(f"{quota} 100000")
            with contextlib.suppress(OSError):
                (d / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            return
        memory_dir, pids_dir, cpu_dir = self._dirs()
        for d in (memory_dir, pids_dir, cpu_dir):
            d.mkdir(parents=True, exist_ok=True)
        (memory_dir / "memory.limit_in_bytes").write_text(str(memory))
        with contextlib.suppress(OSError):  # absent without swap accounting
            (memory_dir / "memory.memsw.limit_in_bytes").write_text(str(memory))
        (pids_dir / "pids.max").write_text(str(s.build_pids_limit))
        (cpu_dir / "cpu.cfs_period_us").write_text("100000")
        (cpu_dir / "cpu.cfs_quota_us").write_text(str(quota))

    def _read(self, controller: str, name: str) -> str:
        d = self._dirs()[0] if self.v2 else self._dirs()[self.V1_CONTROLLERS.index(controller)]
        with contextlib.suppress(OSError):
            return (d / name).read_text()
        return ""

    @staticmethod
    def _field(text: str, key: str) -> int:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
                return int(parts[1])
        return 0

    def _number(self, controller: str, name: str) -> int:
        text = self._read(controller, name).strip()
        return int(text) if text.isdigit() else 0

    def limit_hit(self, exit_code: int) -> str | None:
        """Which limit a failed build ran into, if any. The counters of the build's own cgroup
        are read (the kernel records OOM kills and refused forks in the step's child cgroup,
        which runc has removed by now): its peak use reached the limit."""
        s = self.settings
        memory = s.build_memory_mb * 1024 * 1024
        if self.v2:
            peak_memory = self._number("memory", "memory.peak")
        else:
            peak_memory = self._number("memory", "memory.max_usage_in_bytes")
        # Killed (SIGKILL: 128 + 9) while its memory was at the limit: the OOM killer.
        if exit_code == 137 and peak_memory >= memory - 1024 * 1024:
            return f"the build ran out of memory (build memory limit {s.build_memory_mb} MB)"
        peak_pids = self._number("pids", "pids.peak")
        if peak_pids >= s.build_pids_limit or self._field(self._read("pids", "pids.events"), "max"):
            return f"the build hit its process limit (build PIDs limit {s.build_pids_limit})"
        return None

    def pids(self) -> list[int]:
        found: list[int] = []
        for d in self._dirs()[:1] if self.v2 else [self._dirs()[1]]:
            for procs in d.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    found += [int(p) for p in procs.read_text().split()]
        return found

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        # Every hierarchy runc created the step cgroups in (also "unified"/"systemd" on hybrid).
        every = {*self._dirs(), *Path("/sys/fs/cgroup").glob(f"*{self.relative}")}
        for d in every:
            if not d.exists():
                continue
            for child in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                d.rmdir()


# ------------------------------------------------------------------------------------ builder


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    points: list[str] = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    return points


def unmount_under(path: Path) -> None:
    """Detach every mount below ``path`` (deepest first). containers-storage leaves its overlay
    home bind-mounted on itself (once per buildah run: they stack) and sometimes a layer after
    buildah exits; a project's store must not keep mounts once its build is over."""
    for _ in range(64):
        points = _mounts_under(path)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            # MNT_DETACH (2): a mount still in use goes once its last user is gone.
            libc.umount2(point.encode(), 2)


libc = ctypes.CDLL(None, use_errno=True)


def clean_leftovers(settings: Settings) -> int:
    """With no build running (Pomegranate starting, or stopped after its drain): detach the
    mounts under the builder's home and remove the work directories that builds killed with
    their process left behind (their own cleanup never ran). Returns how many were found."""
    home = (settings.data_dir / "builder").resolve()
    found = len(_mounts_under(home))
    unmount_under(home)
    work = home / "work"
    if work.is_dir():
        for child in work.iterdir():
            found += 1
            shutil.rmtree(child, ignore_errors=True)
    return found


def _dir_kib(path: Path) -> int:
    """Disk use of a directory tree in KiB, staying on its filesystem (overlay mounts skipped)."""
    total = 0
    dev = path.stat().st_dev if path.exists() else None
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                if st.st_dev == dev:
                    stack.append(Path(entry.path))
            else:
                total += st.st_blocks * 512
    return total // 1024


class IsolatedBuilder:
    """Builds a project's source tree with buildah and pushes the result to the registry."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = (settings.data_dir / "builder").resolve()
        self.registry = Registry(settings)
        # The engine buildah's docker-daemon transport reads (DOCKER_HOST, else the local
        # socket), which is not necessarily settings.docker_url: the base images' source.
        self._docker: aiodocker.Docker | None = None
        self._base_lock = asyncio.Lock()
        # Image IDs this process saw in the base store: it only grows, so a build whose base
        # images are all known skips listing it.
        self._base_ids: set[str] = set()

    def _engine(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker()
        return self._docker

    async def close(self) -> None:
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    # paths

    @property
    def base_store(self) -> Path:
        if self.settings.build_base_store:
            return Path(self.settings.build_base_store).resolve()
        return self.home / "base"

    def project_store(self, project: str) -> Path:
        return self.home / "projects" / project

    def _storage_args(self, root: Path) -> list[str]:
        return [
            "--root",
            str(root / "root"),
            "--runroot",
            str(root / "run"),
            "--storage-driver",
            "overlay",
        ]

    def _project_args(self, project: str) -> list[str]:
        base = self.base_store / "root"
        return [
            *self._storage_args(self.project_store(project)),
            "--storage-opt",
            f"overlay.imagestore={base}",
        ]

    def ca_bundle(self) -> str | None:
        path = self.settings.build_ca_bundle or DEFAULT_CA_BUNDLE
        return path if Path(path).is_file() else None

    # subprocesses

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAASTECH_")}
        # A registries.conf of our own: no short-name search, so an unqualified FROM of an image
        # this project does not have fails instead of being looked up anywhere.
        env["CONTAINERS_REGISTRIES_CONF"] = str(self.home / "registries.conf")
        env.pop("REGISTRY_AUTH_FILE", None)
        return env

    async def _run(
        self,
        args: list[str],
        on_line: Callable[[str], Awaitable[None]] | None = None,
        *,
        check: bool = True,
    ) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,
        )
        output: list[str] = []
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                output.append(line)
                if on_line is not None:
                    await on_line(line)
            code = await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), 10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        text = "\n".join(output)
        if check and code != 0:
            raise BuildError(None, f"{Path(args[0]).name} {args[1]} failed: {text[-500:]}")
        return code, text

    # setup

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "registries.conf").write_text(
            'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
        )
        cni = self.home / "cni"
        cni.mkdir(exist_ok=True)
        subnet = self.settings.build_subnet
        network, _, _ = subnet.partition("/")
        octets = network.split(".")
        gateway = ".".join([*octets[:3], str(int(octets[3]) + 1)])
        conflist = {
            "cniVersion": "0.4.0",
            "name": BUILD_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BUILD_BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "ipam": {
                        "type": "host-local",
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                    },
                },
                {"type": "firewall", "backend": "iptables"},
            ],
        }
        (cni / f"{BUILD_NETWORK}.conflist").write_text(json.dumps(conflist))

    async def _ensure_network(self) -> None:
        global _network_ready
        if _network_ready:
            return
        env = {**os.environ, "PAASTECH_BUILD_SUBNET": self.settings.build_subnet}
        proc = await asyncio.create_subprocess_exec(
            str(ROOT / "scripts" / "build-network.sh"),
            "install",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise BuildError(None, f"the build network's firewall could not be set up: {out!r}")
        _network_ready = True

    async def _ensure_base_images(self, on_log: LogCallback) -> dict[str, str]:
        """Copy the platform's base images from the Docker engine into the read-only base store
        (once, and again when the engine's image changed); their names and engine image IDs."""
        async with self._base_lock:
            store = self._storage_args(self.base_store)
            s = self.settings
            runtimes = [  # issue 14: every runtime version the buildpacks may pick
                *runtime_table(s.python_runtimes).values(),
                *runtime_table(s.node_runtimes).values(),
            ]
            # One listing of the engine's images (not one inspect per image: every build pays
            # it), through its API: the docker CLI's own start cost about 20 ms (issue 17).
            engine = {
                tag: str(image["Id"]).removeprefix("sha256:")
                for image in await self._engine().images.list()
                for tag in image.get("RepoTags") or ()
            }
            wanted = {
                name: engine[name]
                for name in (s.python_base_image, s.node_base_image, s.static_base_image, *runtimes)
                if name in engine  # not built on this machine: a FROM of it fails clearly
            }
            if set(wanted.values()) <= self._base_ids:
                return wanted
            _, listing = await self._run(
                ["buildah", *store, "images", "--no-trunc", "--format", "{{.ID}}"], check=False
            )
            self._base_ids |= {
                line.strip().removeprefix("sha256:") for line in listing.splitlines()
            }
            for name, image_id in wanted.items():
                if image_id in self._base_ids:
                    continue
                await on_log(
                    deploy_output.heading(f"Importing base image {name} into the build store")
                )
                await self._run(["buildah", *store, "pull", "--quiet", f"docker-daemon:{name}"])
                self._base_ids.add(image_id)
            return wanted

    async def _clear_cache_if_large(self, project: str, on_log: LogCallback) -> int:
        """Clear the project's layer cache when over its limit; its size in KiB after (one walk
        of the store when nothing is cleared: the disk limit counts from it)."""
        store = self.project_store(project)
        if not store.exists():
            return 0
        kib = await asyncio.to_thread(_dir_kib, store)
        if kib > self.settings.build_cache_mb * 1024:
            await on_log(
                deploy_output.heading(
                    f"Build cache is {kib // 1024} MB (more than "
                    f"{self.settings.build_cache_mb} MB): clearing it"
                )
            )
            await self._run(
                ["buildah", *self._project_args(project), "rmi", "--all", "--force"], check=False
            )
            kib = await asyncio.to_thread(_dir_kib, store)
        return kib

    def _policy(self, work: Path, project: str) -> Path:
        """The signature policy of one build: images from a public registry (docker://), and
        buildah's own copies within this build's stores (a fully cached build re-tags an image
        of the project's store, which buildah names after the base store); every other
        transport (docker-daemon:, another containers-storage, oci:, dir:, archives) rejected."""
        accept = [{"type": "insecureAcceptAnything"}]
        own = {
            f"[overlay@{root}]": accept
            for root in (self.base_store / "root", self.project_store(project) / "root")
        }
        policy = {
            "default": [{"type": "reject"}],
            "transports": {"docker": {"": accept}, "containers-storage": own},
        }
        path = work / "policy.json"
        path.write_text(json.dumps(policy))
        return path

    def _runtime_wrapper(self, work: Path, env: dict[str, str]) -> Path:
        """An OCI runtime that adds the build-time-only settings to each RUN step's config."""
        s = self.settings
        extra = {
            "env": [f"{k}={v}" for k, v in env.items()],
            "fsize": s.build_disk_mb * 1024 * 1024,
            "runc": RUNC,
        }
        script = work / "runtime"
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            f"EXTRA = json.loads({json.dumps(json.dumps(extra))})\n"
            "args = sys.argv[1:]\n"
            "bundle = None\n"
            "for i, a in enumerate(args):\n"
            "    if a in ('--bundle', '-b') and i + 1 < len(args):\n"
            "        bundle = args[i + 1]\n"
            "    elif a.startswith('--bundle='):\n"
            "        bundle = a.split('=', 1)[1]\n"
            "if bundle and args and args[0] in ('create', 'run'):\n"
            "    path = os.path.join(bundle, 'config.json')\n"
            "    with open(path) as fh:\n"
            "        config = json.load(fh)\n"
            "    process = config.setdefault('process', {})\n"
            "    process['env'] = process.get('env', []) + EXTRA['env']\n"
            "    process['noNewPrivileges'] = True\n"
            "    limits = [r for r in process.get('rlimits', []) if r['type'] != 'RLIMIT_FSIZE']\n"
            "    limits.append({'type': 'RLIMIT_FSIZE', 'hard': EXTRA['fsize'],"
            " 'soft': EXTRA['fsize']})\n"
            "    process['rlimits'] = limits\n"
            "    with open(path, 'w') as fh:\n"
            "        json.dump(config, fh)\n"
            "os.execv(EXTRA['runc'], ['runc', *args])\n"
        )
        script.chmod(0o700)
        return script

    # the build

    async def build(
        self,
        project: str,
        application: int,
        source: SourceTar,
        plan: BuildPlan,
        generated_dockerfile: tuple[str, str] | None,
        on_log: LogCallback,
    ) -> BuildOutput:
        s = self.settings
        (self.home / "work").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{project}-{application}-", dir=self.home / "work"))
        cgroup = BuildCgroup(f"{s.instance}-{project}-{application}-{uuid.uuid4().hex[:6]}", s)
        last_lines: list[str] = []
        step: str | None = None

        async def emit(line: str) -> None:
            nonlocal step
            if _STEP.match(line):
                step = line
            last_lines.append(line)
            del last_lines[:-BUILD_LOG_KEEP]
            await on_log(line)

        def unpack() -> None:
            context.mkdir()
            extract_context(source, context)

        context = work / "context"
        # Milliseconds per step, logged once per build: where a build's time went (issue 17).
        steps: dict[str, float] = {}
        began = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal began
            now = time.perf_counter()
            steps[name] = (now - began) * 1000
            began = now

        try:
            await asyncio.to_thread(self._write_config)  # buildah reads it at start
            await asyncio.to_thread(cgroup.create)
            # The independent set-up steps overlap (subprocesses and disk work; every push waits
            # for all of them, and issue 10's budget is what isolation adds to a push). All run
            # to the end before an error is raised: none is left writing under ``work``.
            results = await asyncio.gather(
                self._ensure_network(),
                self._ensure_base_images(on_log),
                self._clear_cache_if_large(project, on_log),
                asyncio.to_thread(unpack),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            start_kib = cast(int, results[2])
            dockerfile = context / DOCKERFILE
            if generated_dockerfile is not None:
                name, text = generated_dockerfile
                dockerfile = work / name  # outside the context: no user file can clash with it
                dockerfile.write_text(text)
            records = ReuseRecords(self.project_store(project))
            key = await asyncio.to_thread(
                _reuse_key, context, dockerfile, cast(dict[str, str], results[1])
            )
            lap("set-up")
            if key is not None:
                reused = await self._reuse(project, application, records, key, emit)
                if reused is not None:
                    lap("reuse")
                    log.info(
                        "build of %s v%d: reused v%d's image; steps (ms): %s",
                        project,
                        application,
                        reused.application,
                        _steps_text(steps),
                    )
                    return BuildOutput(
                        image=f"{repository(s, project)}@{reused.digest}",
                        digest=reused.digest,
                        stripped_labels=reused.stripped_labels,
                        size_bytes=reused.size_bytes,
                    )
            run_env: dict[str, str] = {}
            volumes: list[str] = []
            ca = self.ca_bundle()
            if ca is not None:
                volumes += ["-v", f"{ca}:{CA_MOUNT}:ro"]
                run_env.update({name: CA_MOUNT for name in CA_VARIABLES})
            run_env.update({k: os.environ[k] for k in PROXY_VARIABLES if os.environ.get(k)})
            runtime = self._runtime_wrapper(work, run_env)
            policy = self._policy(work, project)
            # One tag per project: re-tagging leaves the previous image's layers in the store as
            # the cache, where removing it (buildah rmi) would drop its intermediate layers too.
            local = f"localhost/build-{project}:latest"
            args = [
                "buildah",
                *self._project_args(project),
                "bud",
                "--layers",
                "--identity-label=false",
                "--signature-policy",
                str(policy),
                "--runtime",
                str(runtime),
                "--cgroup-parent",
                cgroup.parent,
                "--cap-drop",
                "all",
                "--cni-config-dir",
                str(self.home / "cni"),
                "--network",
                BUILD_NETWORK,
                *volumes,
                "-f",
                str(dockerfile),
                "-t",
                local,
                str(context),
            ]
            await emit(
                deploy_output.heading(
                    f"Isolated build (memory {s.build_memory_mb} MB, CPU {s.build_cpu:g}, "
                    f"{s.build_pids_limit} processes, disk {s.build_disk_mb} MB, "
                    f"{s.build_timeout_seconds}s)"
                )
            )
            store = self.project_store(project)
            store.mkdir(parents=True, exist_ok=True)
            try:
                async with asyncio.timeout(s.build_timeout_seconds):
                    code = await self._watched(args, emit, store, start_kib, cgroup)
                    if code != 0 and overlay_mount_race(last_lines):
                        # Seen only under heavy parallel load, never reproducible alone: the
                        # kernel refuses a step container's fresh overlay mount. Layers built so
                        # far are cached, so one more run resumes at the failed step.
                        await emit(
                            deploy_output.heading(
                                "The build's overlay mount was refused by the kernel; "
                                "building once more from the cached layers"
                            )
                        )
                        del last_lines[:]
                        await asyncio.to_thread(cgroup.kill_all)
                        code = await self._watched(args, emit, store, start_kib, cgroup)
            except TimeoutError:
                await asyncio.to_thread(cgroup.kill_all)
                raise BuildError(
                    step,
                    f"the build took longer than its time limit "
                    f"(build_timeout_seconds {s.build_timeout_seconds}s)",
                    last_lines,
                ) from None
            except _Limit as exc:
                await asyncio.to_thread(cgroup.kill_all)
                raise BuildError(step, exc.reason, last_lines) from None
            if code != 0:
                hit = await asyncio.to_thread(cgroup.limit_hit, code)
                if hit is None and any("File size limit exceeded" in line for line in last_lines):
                    hit = f"a file exceeded its disk limit (build disk limit {s.build_disk_mb} MB)"
                message = hit or _failure_message(last_lines)
                raise BuildError(step, message, last_lines)
            lap("buildah bud")
            digest, info, stripped = await self._labels_and_push(project, application, local, emit)
            lap("labels and push")
            log.info("build of %s v%d: steps (ms): %s", project, application, _steps_text(steps))
            size = image_size(info)
            if key is not None:
                built = Reused(digest, size, stripped, application)
                try:
                    await asyncio.to_thread(records.put, key, built)
                except OSError as exc:  # the build stands; only a later reuse is lost
                    log.warning(
                        "build of %s v%d: reuse record not kept: %s", project, application, exc
                    )
            return BuildOutput(
                image=f"{repository(s, project)}@{digest}",
                digest=digest,
                stripped_labels=stripped,
                size_bytes=size,
            )
        finally:
            await asyncio.to_thread(cgroup.kill_all)
            await asyncio.to_thread(cgroup.remove)
            await asyncio.to_thread(unmount_under, self.project_store(project))
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _reuse(
        self,
        project: str,
        application: int,
        records: ReuseRecords,
        key: str,
        emit: LogCallback,
    ) -> Reused | None:
        """The image of an earlier build with the same key, tagged for ``application`` in the
        registry; None when there is none or the registry no longer has it (retention)."""
        found = await asyncio.to_thread(records.get, key)
        if found is None:
            return None
        try:
            tagged = await self.registry.tag(project, found.digest, str(application))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # The build runs instead; its push says what is wrong with the registry.
            log.warning("build of %s v%d: reuse skipped, registry: %r", project, application, exc)
            return None
        if not tagged:
            return None
        await emit(
            deploy_output.heading(
                f"Same source, Dockerfile and base images as v{found.application}: "
                "reusing its image (every build step would come from the cache)"
            )
        )
        if found.stripped_labels:
            await emit(_stripped_line(found.stripped_labels))
        return found

    async def _watched(
        self,
        args: list[str],
        emit: LogCallback,
        store: Path,
        start_kib: int,
        cgroup: BuildCgroup,
    ) -> int:
        """Run buildah; stop it when the project's storage grows past the disk limit."""
        limit_kib = self.settings.build_disk_mb * 1024
        interval = WATCH_INTERVAL
        task = asyncio.create_task(self._run(args, emit, check=False))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=interval)
                if done:
                    return task.result()[0]
                began = time.monotonic()
                used = await asyncio.to_thread(_dir_kib, store) - start_kib
                # A large cache takes longer to measure: never spend more than ~1/4 of the time
                # measuring.
                interval = max(WATCH_INTERVAL, 4 * (time.monotonic() - began))
                if used > limit_kib:
                    raise _Limit(
                        f"the build wrote more than its disk limit "
                        f"(build disk limit {self.settings.build_disk_mb} MB)"
                    )
        finally:
            if not task.done():
                await asyncio.to_thread(cgroup.kill_all)
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _inspect(self, project: str, ref: str) -> dict[str, Any]:
        _, out = await self._run(["buildah", *self._project_args(project), "inspect", ref])
        info: dict[str, Any] = json.loads(out)
        return info

    async def _labels_and_push(
        self, project: str, application: int, local: str, emit: LogCallback
    ) -> tuple[str, dict[str, Any], list[str]]:
        """Push the built image, its labels checked meanwhile (issue 17: the check no longer
        delays the push). An image with labels the platform forbids (rare) is then stripped
        and pushed again, and the first push's manifest deleted: nothing ever pulls it (every
        pull is by the digest returned here). -> (digest, inspect, stripped label keys)."""
        push = asyncio.create_task(self._push(project, application, local, emit))
        try:
            info = await self._inspect(project, local)
        except BaseException:
            push.cancel()
            with contextlib.suppress(BaseException):
                await push
            raise
        stripped = forbidden_labels(_labels(info))
        first = await push
        if not stripped:
            return first, info, []
        await self.registry.delete(project, first)
        await self._strip_labels(project, local, stripped, emit)
        digest, info = await asyncio.gather(
            self._push(project, application, local, emit, announce=False),
            self._inspect(project, local),
        )
        return digest, info, stripped

    async def _strip_labels(
        self, project: str, local: str, stripped: list[str], emit: LogCallback
    ) -> None:
        await emit(_stripped_line(stripped))
        store = self._project_args(project)
        _, container = await self._run(
            ["buildah", *store, "from", "--pull=never", "--quiet", local]
        )
        container = container.strip().splitlines()[-1]
        try:
            removals: list[str] = []
            for key in stripped:
                removals += ["--label", f"{key}-"]
            await self._run(["buildah", *store, "config", *removals, container])
            await self._run(
                ["buildah", *store, "commit", "--quiet", "--identity-label=false", container, local]
            )
        finally:
            await self._run(["buildah", *store, "rm", container], check=False)
        left = forbidden_labels(_labels(await self._inspect(project, local)))
        if left:
            raise BuildError(None, f"could not remove the labels {', '.join(left)}")

    async def _push(
        self,
        project: str,
        application: int,
        local: str,
        emit: LogCallback,
        *,
        announce: bool = True,
    ) -> str:
        s = self.settings
        password = s.resolved_registry_password()
        if not password:
            raise BuildError(None, "the platform registry has no credentials (scripts/registry.sh)")
        target = f"docker://{repository(s, project)}:{application}"
        digest_file = self.home / "work" / f"digest-{project}-{application}-{uuid.uuid4().hex[:6]}"
        if announce:
            await emit(
                deploy_output.heading(f"Pushing to the platform registry ({s.registry_address})")
            )
        try:
            code, out = await self._run(
                [
                    "buildah",
                    *self._project_args(project),
                    "push",
                    "--quiet",
                    # Layers go over loopback to our own registry: gzip costs more than it saves.
                    "--disable-compression",
                    "--tls-verify=false",
                    "--creds",
                    f"{s.registry_username}:{password}",
                    "--digestfile",
                    str(digest_file),
                    local,
                    target,
                ],
                check=False,
            )
            if code != 0:
                raise BuildError(None, f"pushing to the platform registry failed: {out[-300:]}")
            digest = digest_file.read_text().strip()
        finally:
            digest_file.unlink(missing_ok=True)
        return digest

    async def remove_project(self, project: str) -> None:
        """Drop a project's build storage (its cache and images)."""
        store = self.project_store(project)
        if not store.exists():
            return
        await self._run(
            ["buildah", *self._project_args(project), "rmi", "--all", "--force"], check=False
        )
        await self._run(["buildah", *self._project_args(project), "rm", "--all"], check=False)
        await asyncio.to_thread(unmount_under, store)
        await asyncio.to_thread(shutil.rmtree, store, True)


SOURCES_ALLOWED = (
    "a build can use only the platform's base images, stages of the same Dockerfile and public "
    "images named in full"
)


def _steps_text(steps: dict[str, float]) -> str:
    """A build's step times for its log line: "set-up 8, buildah bud 336, ..."."""
    return ", ".join(f"{name} {ms:.0f}" for name, ms in steps.items())


def _labels(info: dict[str, Any]) -> dict[str, str]:
    """An image's labels from ``buildah inspect`` (its OCI and Docker configs)."""
    labels: dict[str, str] = {}
    for key in ("OCIv1", "Docker"):
        labels.update(((info.get(key) or {}).get("config") or {}).get("Labels") or {})
    return labels


def _stripped_line(labels: list[str]) -> str:
    return deploy_output.heading(
        "Removed labels the platform does not allow (only org.opencontainers.* are kept): "
        + ", ".join(labels)
    )


def _reuse_key(context: Path, dockerfile: Path, base_ids: dict[str, str]) -> str | None:
    """build_reuse's key, or None when the Dockerfile cannot be read (buildah reports that)."""
    try:
        text = dockerfile.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return build_key(context, text, base_ids)


def image_size(info: dict[str, Any]) -> int:
    """An image's size in the build store (``buildah inspect``): its config and its layers as
    stored there, uncompressed (a local store keeps layers as plain tar, whatever media type
    the manifest names); the same source always gives the same figure."""
    manifest = json.loads(info.get("Manifest") or "{}")
    parts = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
    return sum(int(part.get("size") or 0) for part in parts)


def overlay_mount_race(last_lines: list[str]) -> bool:
    """True when buildah failed because the kernel refused a step container's overlay mount
    (``mounting new container: ... invalid argument``): a transient failure, unlike a user's
    Dockerfile error, so the build is worth one more run."""
    return any(
        line.startswith("Error: ")
        and "mounting new container" in line
        and line.rstrip().endswith("invalid argument")
        for line in last_lines
    )


def _failure_message(last_lines: list[str]) -> str:
    for line in reversed(last_lines):
        if line.startswith("Error: "):
            text = line.removeprefix("Error: ")
            if "short-name" in text and "did not resolve" in text:
                name = text.split('"')[1] if '"' in text else "?"
                return f"image {name} is not available to this build: {SOURCES_ALLOWED}"
            exit_status = re.search(r"while running runtime: exit status (\d+)$", text)
            if exit_status:
                return f"the step exited with code {exit_status.group(1)}"
            if "no stage or image found with that name" in text:
                return f"{text}: {SOURCES_ALLOWED}"
            if "rejected by policy" in text:
                return f"{text}: {SOURCES_ALLOWED}"
            return text
    return "the build failed"
