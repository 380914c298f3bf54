"""The columns of `application` a query's selection of releases needs (issue 17).

The batched release loaders (loaders.py) read only these, and ApplicationType.of_row converts
only what was read: the 1,000-project listing asks `number` and `status` of 3,000 releases, and
reading and converting all 14 columns was about a third of its CPU time. A field this module
does not know reads every column, so a new field is never served from a row that lacks it
(and a unit test fails until it is listed here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.types import Info

from backend.db.rows import APPLICATION_COLUMNS

Columns = tuple[str, ...]  # in APPLICATION_COLUMNS order: a hashable loader key part

# Always read: the loaders group and order by them, and `buildLog`/`statusHistory` need `id`.
KEY_COLUMNS = ("id", "project_id", "number")

# Each GraphQL field of Application -> the columns its value is made of.
FIELD_COLUMNS: dict[str, Columns] = {
    "__typename": (),
    "projectName": (),  # the project's, not the row's
    "number": ("number",),
    "status": ("status",),
    "finished": ("status",),
    "live": ("status",),
    "failed": ("status",),
    "cause": ("cause",),
    "commitSha": ("commit_sha",),
    "image": ("image",),
    "imageDigest": ("image_digest",),
    "createdAt": ("created_at",),
    "finishedAt": ("finished_at",),
    "failureReason": ("failure_reason",),
    "domains": ("domains",),
    "replicas": ("replicas",),
    "state": ("status", "replicas"),
    "envKeys": ("env_snapshot",),
    "buildLog": ("id",),
    "statusHistory": ("id",),
}


def ordered(columns: Iterable[str]) -> Columns:
    """``columns`` with the key columns, in APPLICATION_COLUMNS order (one key per set)."""
    wanted = {*KEY_COLUMNS, *columns}
    return tuple(c for c in APPLICATION_COLUMNS if c in wanted)


# What Project.state reads of the live release.
STATE_COLUMNS = ordered(FIELD_COLUMNS["state"])


def columns_of(
    field_nodes: Iterable[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> Columns:
    """The columns the sub-selections of ``field_nodes`` (fields returning Application) need,
    through fragments; every column for a field not in FIELD_COLUMNS. @skip/@include are not
    evaluated: a skipped field only adds its columns."""
    wanted = set(KEY_COLUMNS)
    for node in field_nodes:
        if node.selection_set is not None and not _collect(
            node.selection_set, fragments, wanted, set()
        ):
            return APPLICATION_COLUMNS
    return ordered(wanted)


def _collect(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    wanted: set[str],
    seen: set[str],
) -> bool:
    """Add the columns of ``selection_set`` to ``wanted``; False for an unknown field."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            columns = FIELD_COLUMNS.get(selection.name.value)
            if columns is None:
                return False
            wanted.update(columns)
            continue
        if isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:  # validation refuses cycles; a repeated spread adds nothing
                continue
            seen.add(name)
            fragment = fragments.get(name)
            inner = fragment.selection_set if fragment is not None else None
        elif isinstance(selection, InlineFragmentNode):
            inner = selection.selection_set
        else:
            return False
        if inner is None or not _collect(inner, fragments, wanted, seen):
            return False
    return True


def columns_for(info: Info) -> Columns:
    """The columns the field being resolved needs of its releases: computed once per request
    and field (a listing resolves `applications` once per project)."""
    raw = info._raw_info
    memo: dict[tuple[int, ...], Columns] = info.context.loaders.columns
    key = tuple(map(id, raw.field_nodes))  # the document outlives the request: stable ids
    found = memo.get(key)
    if found is None:
        found = memo[key] = columns_of(raw.field_nodes, raw.fragments)
    return found


def release_fields(
    listing_nodes: Iterable[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> list[tuple[str, list[FieldNode]]]:
    """The release fields (RELEASE_FIELDS) a project listing selects of each
    project, through fragments: (field name, its nodes) per response key, as graphql-core
    merges them (so each group's columns are what the resolver computes)."""
    groups: dict[str, tuple[str, list[FieldNode]]] = {}
    for listing in listing_nodes:
        if listing.selection_set is not None:
            _release_nodes(listing.selection_set, fragments, groups, set())
    return list(groups.values())


def _release_nodes(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    groups: dict[str, tuple[str, list[FieldNode]]],
    seen: set[str],
) -> None:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name in RELEASE_FIELDS:
                key = selection.alias.value if selection.alias else name
                groups.setdefault(key, (name, []))[1].append(selection)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None and selection.name.value not in seen:
                seen.add(selection.name.value)
                _release_nodes(fragment.selection_set, fragments, groups, seen)
        elif isinstance(selection, InlineFragmentNode):
            _release_nodes(selection.selection_set, fragments, groups, seen)


# Project fields that read releases through the loaders (`state`: its live one's status).
RELEASE_FIELDS = ("applications", "liveApplication", "state")
