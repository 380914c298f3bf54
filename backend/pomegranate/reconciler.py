"""Make the engine match the desired state (what the database says must run), over a Runtime.

Decisions, per managed container (``decide``, pure):

* its project is not desired at all -> remove (an orphan of a deleted project);
* it belongs to the project's live Application, its process type is in the live spec, its
  replica is within the scale, and its name and network are exactly the ones Pomegranate gives
  that replica -> adopt (a container that is not running, and not being restarted by the
  engine's restart policy, is re-created from the spec);
* the same, but with the name of before issue 11 (``paastech-<project>-...`` on the shared
  network) -> migrate: a replacement is started under the new name on the project's network and
  the old one is removed only once the replacement is healthy, so the app keeps serving through
  the upgrade;
* its Application is being deployed right now (in flight) -> leave it alone;
* a one-off command's container (issue 14) -> left alone while the session that started it is
  still in this Pomegranate (``active_oneoffs``), removed otherwise (its caller is gone: e.g.
  Pomegranate restarted mid-command);
* anything else (an old release, a release half started before a crash, a replica beyond the
  scale, a name or network that disagrees with its labels: a container claiming to be another
  project's) -> stop and remove.

Then every replica of a live spec that has no container is started (without waiting for health:
reconciliation repairs, it does not gate anything).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from backend import labels as L
from backend.pomegranate.release import ReleasePlan, stop_and_remove
from backend.pomegranate.runtime import ContainerInfo, Runtime
from backend.settings import Settings

log = logging.getLogger(__name__)

# Engine states in which a container of the live release is left as it is.
ALIVE_STATES = frozenset({"running", "restarting"})


@dataclass(slots=True)
class DesiredProject:
    project: str
    live: ReleasePlan | None = None
    in_flight: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Decisions:
    adopt: list[ContainerInfo] = field(default_factory=list)
    recreate: list[ContainerInfo] = field(default_factory=list)
    # Live containers under their pre-issue-11 name: replaced, then removed once healthy.
    migrate: list[ContainerInfo] = field(default_factory=list)
    remove: list[ContainerInfo] = field(default_factory=list)
    leave: list[ContainerInfo] = field(default_factory=list)
    # (project, process type, replica) of live replicas without any container.
    missing: list[tuple[str, str, int]] = field(default_factory=list)


@runtime_checkable
class SwarmReconciling(Protocol):
    """A runtime that reconciles whole services (SwarmRuntime, issue 16)."""

    async def reconcile_services(
        self, desired: list[DesiredProject], skip: set[str]
    ) -> ReconcileResult: ...


@dataclass(slots=True)
class ReconcileResult:
    adopted: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _identity(info: ContainerInfo, instance: str) -> str:
    """ "current" when the name and network agree with the labels, "legacy" for a container of
    before issue 11, else "forged"."""
    own = info.ownership
    assert own is not None
    name = L.container_name(
        own.project, own.application, own.process, own.replica, instance=instance
    )
    if info.name == name and L.network_name(own.project, instance=instance) in info.networks:
        return "current"
    if info.name == L.legacy_container_name(own.project, own.application, own.process, own.replica):
        return "legacy"
    return "forged"


def decide(
    desired: list[DesiredProject],
    containers: list[ContainerInfo],
    *,
    instance: str = L.DEFAULT_INSTANCE,
    active_oneoffs: frozenset[str] = frozenset(),
) -> Decisions:
    by_project = {d.project: d for d in desired}
    out = Decisions()
    present: set[tuple[str, str, int]] = set()
    for info in sorted(containers, key=lambda c: c.name):
        own = info.ownership
        if own is None:
            # Not a release container: e.g. the legacy builder's intermediate containers carry
            # the image's build labels. The builder removes them itself.
            continue
        want = by_project.get(own.project)
        if want is None:
            out.remove.append(info)
            continue
        if L.is_oneoff(info.labels):
            (out.leave if info.id in active_oneoffs else out.remove).append(info)
            continue
        live = want.live
        key = (own.project, own.process, own.replica)
        identity = _identity(info, instance)
        if (
            live is not None
            and own.application == live.application
            and live.wants(own.process, own.replica)
            and key not in present  # a duplicate of an adopted replica is removed
            and identity != "forged"
        ):
            present.add(key)
            if info.state not in ALIVE_STATES:
                out.recreate.append(info)
            elif identity == "legacy":
                out.migrate.append(info)
            else:
                out.adopt.append(info)
        elif own.application in want.in_flight:
            out.leave.append(info)
        else:
            out.remove.append(info)
    for want in desired:
        if want.live is None:
            continue
        for process in want.live.processes:
            for replica in range(1, process.replicas + 1):
                key = (want.project, process.type, replica)
                if key not in present:
                    out.missing.append(key)
    return out


async def reconcile(
    runtime: Runtime,
    desired: list[DesiredProject],
    settings: Settings,
    *,
    skip: set[str] | None = None,
    active_oneoffs: frozenset[str] = frozenset(),
) -> ReconcileResult:
    """Apply ``decide`` to the engine. Projects in ``skip`` (a release of theirs is running in
    this process right now) are not touched at all; nor are the one-off containers (ids) in
    ``active_oneoffs``, whose sessions run in this process."""
    skip = skip or set()
    if isinstance(runtime, SwarmReconciling):
        # Issue 16: Swarm keeps the replicas of a service itself; only the services are made to
        # match (the container-level decisions below would take tasks for forged containers).
        return await runtime.reconcile_services(desired, skip)
    # One engine listing, no inspect per container (issue 17): every decision reads only what
    # the listing carries (labels, name, networks, state).
    containers = [
        c
        for c in await runtime.list_containers(detail=False)
        if c.ownership is None or c.ownership.project not in skip
    ]
    wanted = [d for d in desired if d.project not in skip]
    decisions = decide(
        wanted, containers, instance=settings.instance, active_oneoffs=active_oneoffs
    )
    plans = {d.project: d.live for d in wanted if d.live is not None}
    result = ReconcileResult(adopted=[c.name for c in decisions.adopt])

    outcomes = await asyncio.gather(
        *(stop_and_remove(runtime, [c]) for c in decisions.remove), return_exceptions=True
    )
    for info, outcome in zip(decisions.remove, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            log.warning("could not remove %s: %s", info.name, outcome)
        else:
            result.removed.append(info.name)
    # Orphans of deleted projects: their network goes too, returning its subnet to the pool.
    wanted_projects = {d.project for d in wanted}
    for project in sorted(
        {c.ownership.project for c in decisions.remove if c.ownership is not None} - wanted_projects
    ):
        try:
            await runtime.remove_project_network(project)
        except Exception as exc:
            log.warning("could not remove the network of %s: %s", project, exc)

    to_start: list[tuple[ReleasePlan, str, int]] = []
    for info in decisions.recreate:
        assert info.ownership is not None
        own = info.ownership
        try:
            await runtime.remove(info.id)
        except Exception as exc:
            log.warning("could not remove %s to re-create it: %s", info.name, exc)
            continue
        to_start.append((plans[own.project], own.process, own.replica))
    for project, process_type, replica in decisions.missing:
        to_start.append((plans[project], process_type, replica))

    # A migrated container is reported as its replacement started and the old name removed.
    migrations = await asyncio.gather(
        *(
            _migrate(runtime, plans[c.ownership.project], c, settings)
            for c in decisions.migrate
            if c.ownership is not None
        )
    )
    for migrated in migrations:
        if migrated is not None:
            result.started.append(migrated[1])
            result.removed.append(migrated[0])

    for plan, process_type, replica in to_start:
        process = next(p for p in plan.processes if p.type == process_type)
        spec = plan.process_spec(process, replica, settings)
        try:
            info = await runtime.start(spec)
        except Exception as exc:
            log.warning("could not start %s.%d of %s: %s", process_type, replica, plan.project, exc)
            continue
        result.started.append(info.name)
    return result


async def _migrate(
    runtime: Runtime, plan: ReleasePlan, old: ContainerInfo, settings: Settings
) -> tuple[str, str] | None:
    """Replace a pre-issue-11 container: start its replacement, wait until it is healthy, then
    remove the old one. On any failure the old one keeps serving (the next pass tries again)."""
    own = old.ownership
    assert own is not None
    process = next(p for p in plan.processes if p.type == own.process)
    spec = plan.process_spec(process, own.replica, settings)
    try:
        new = await runtime.start(spec)
    except Exception as exc:
        log.warning("could not start the replacement of %s: %s", old.name, exc)
        return None
    try:
        await runtime.wait_healthy(new, spec.health_path, plan.health_timeout)
    except Exception as exc:  # HealthCheckError, or the engine failing
        log.warning("the replacement of %s is not healthy, keeping it: %s", old.name, exc)
        await runtime.remove(new.id)
        return None
    try:
        await stop_and_remove(runtime, [old])
    except Exception as exc:
        log.warning("could not remove %s after its replacement started: %s", old.name, exc)
    return old.name, new.name
