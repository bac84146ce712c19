"""Many globs at once: only globs whose literal prefixes nest are compared, which must find
exactly the overlaps that comparing every pair finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ce.plan.graph import PlanItem, file_conflicts

# Prefixes that nest ("", "src/", "src/a", "src/ab/"), share text without nesting ("src/a",
# "src/b") or differ ("docs/"), and suffixes that differ, so the sorted-prefix scan has
# neighbours to skip and neighbours to reach.
FILES = (
    "*.py",
    "**",
    "src/",
    "src/*.py",
    "src/**/*.md",
    "src/a*",
    "src/a*.py",
    "src/ab/*.py",
    "src/ab/x.py",
    "src/ab/x.md",
    "src/b*.md",
    "src/b.md",
    "src/a.py",
    "docs/*.md",
    "docs/a.md",
    "src/[ab].py",
)


def overlap(a: str, b: str) -> bool:
    return bool(file_conflicts([PlanItem(id="A", files=(a,)), PlanItem(id="B", files=(b,))]))


def brute_force(items: list[PlanItem]) -> dict[str, tuple[str, ...]]:
    """Each declared file → the items declaring it or a file that overlaps it, pair by pair."""
    declared = {f: [i.id for i in items if f in i.files] for item in items for f in item.files}
    found: dict[str, tuple[str, ...]] = {}
    for path in sorted(declared):
        touching = {
            i.id for i in items for other in i.files if other == path or overlap(path, other)
        }
        if len(touching) > 1:
            found[path] = tuple(sorted(touching, key=lambda prp_id: int(prp_id[4:])))
    return found


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(FILES), min_size=1, max_size=3), max_size=8))
def test_conflicts_equal_the_pairwise_comparison(files: list[list[str]]) -> None:
    items = [PlanItem(id=f"PRP-{n}", files=tuple(fs)) for n, fs in enumerate(files, start=1)]
    assert file_conflicts(items) == brute_force(items)
