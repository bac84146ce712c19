"""Eager scheduling priorities (pure): which ready PRP to start first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def critical_path_priority(
    order: Sequence[str], dependencies: Mapping[str, Sequence[str]], hours: Mapping[str, float]
) -> dict[str, float]:
    """Each PRP's estimated hours plus the longest chain of PRPs that wait on it.

    Starting the PRP with the longest remaining path first is the classic list-scheduling rule
    that keeps the critical path moving; among independent PRPs it is "longest first".
    `order` must be topological (dependencies before dependents), as a plan's sorted order is.
    """
    dependents: dict[str, list[str]] = {prp_id: [] for prp_id in order}
    for prp_id in order:
        for dep in dependencies.get(prp_id, ()):
            if dep in dependents:
                dependents[dep].append(prp_id)
    priority: dict[str, float] = {}
    for prp_id in reversed(order):
        tail = max((priority[d] for d in dependents[prp_id]), default=0.0)
        priority[prp_id] = hours.get(prp_id, 0.0) + tail
    return priority
