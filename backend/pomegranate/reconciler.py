"""Make the engine match the desired state (what the database says must run), over a Runtime.

Decisions, per managed container (``decide``, pure):

* its project is not desired at all -> remove (an orphan of a deleted project);
* it belongs to the project's live Application, its process type is in the live spec and its
  replica is within the scale -> adopt (a container that is not running, and not being restarted
  by the engine's restart policy, is re-created from the spec);
* its Application is being deployed right now (in flight) -> leave it alone;
* anything else (an old release, a release half started before a crash, a replica beyond the
  scale, unreadable labels) -> stop and remove.

Then every replica of a live spec that has no container is started (without waiting for health:
reconciliation repairs, it does not gate anything).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

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
    remove: list[ContainerInfo] = field(default_factory=list)
    leave: list[ContainerInfo] = field(default_factory=list)
    # (project, process type, replica) of live replicas without any container.
    missing: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass(slots=True)
class ReconcileResult:
    adopted: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def decide(desired: list[DesiredProject], containers: list[ContainerInfo]) -> Decisions:
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
        live = want.live
        key = (own.project, own.process, own.replica)
        if (
            live is not None
            and own.application == live.application
            and live.wants(own.process, own.replica)
            and key not in present  # a duplicate of an adopted replica is removed
        ):
            present.add(key)
            (out.adopt if info.state in ALIVE_STATES else out.recreate).append(info)
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
) -> ReconcileResult:
    """Apply ``decide`` to the engine. Projects in ``skip`` (a release of theirs is running in
    this process right now) are not touched at all."""
    skip = skip or set()
    containers = [
        c
        for c in await runtime.list_containers()
        if c.ownership is None or c.ownership.project not in skip
    ]
    wanted = [d for d in desired if d.project not in skip]
    decisions = decide(wanted, containers)
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
