"""The pure planner: stages from dependencies, file conflicts serialized, cycles rejected."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ce.core.errors import CeError
from ce.plan.graph import CycleError, Move, Plan, PlanItem, file_conflicts, id_key, plan_stages

Graph = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # id → (dependencies, files)


def items_of(graph: Graph) -> list[PlanItem]:
    return [
        PlanItem(id=i, dependencies=deps, files=files, source=f"{i}.md")
        for i, (deps, files) in graph.items()
    ]


def stages_of(graph: Graph) -> list[list[str]]:
    return [list(stage) for stage in plan_stages(items_of(graph)).stages]


@pytest.mark.parametrize(
    ("graph", "stages"),
    [
        pytest.param({}, [], id="empty"),
        pytest.param({"A": ((), ())}, [["A"]], id="single"),
        pytest.param(
            {"C": (("B",), ()), "B": (("A",), ()), "A": ((), ())},
            [["A"], ["B"], ["C"]],
            id="chain",
        ),
        pytest.param(
            {"D": (("B", "C"), ()), "B": (("A",), ()), "C": (("A",), ()), "A": ((), ())},
            [["A"], ["B", "C"], ["D"]],
            id="diamond",
        ),
        pytest.param(
            {f"PRP-{n}": ((), ()) for n in (10, 2, 1, 33, 3)},
            [["PRP-1", "PRP-2", "PRP-3", "PRP-10", "PRP-33"]],
            id="wide-natural-order",
        ),
        pytest.param(
            {"A": ((), ()), "B": (("A",), ()), "C": ((), ()), "D": (("A", "B", "C"), ())},
            [["A", "C"], ["B"], ["D"]],
            id="longest-path-decides",
        ),
        pytest.param(
            {"A": ((), ("f.py",)), "B": ((), ("f.py",)), "C": ((), ("g.py",))},
            [["A", "C"], ["B"]],
            id="conflict-within-stage",
        ),
        pytest.param(
            {"A": ((), ("f.py",)), "B": ((), ("g.py",)), "C": (("B",), ("f.py",))},
            [["A", "B"], ["C"]],
            id="conflict-across-stages-needs-no-move",
        ),
        pytest.param(
            {"A": ((), ("f.py",)), "B": ((), ("f.py",)), "C": ((), ("f.py",))},
            [["A"], ["B"], ["C"]],
            id="three-share-a-file",
        ),
        pytest.param(
            {"A": ((), ("f.py",)), "B": ((), ("f.py",)), "C": (("A",), ("g.py",))},
            [["A"], ["B", "C"]],
            id="moved-prp-joins-later-stage",
        ),
        pytest.param(
            {
                "A": ((), ("f.py",)),
                "B": ((), ("f.py",)),
                "C": (("B",), ()),
                "D": (("C",), ()),
            },
            [["A"], ["B"], ["C"], ["D"]],
            id="move-pushes-dependents",
        ),
        pytest.param(
            {"A": ((), ("a.py",)), "B": ((), ("b.py",)), "C": ((), ("a.py", "b.py"))},
            [["A", "B"], ["C"]],
            id="conflicts-with-two",
        ),
        pytest.param(
            {"A": ((), ("src/lib/*.py",)), "B": ((), ("src/lib/util.py",))},
            [["A"], ["B"]],
            id="glob-overlaps-path",
        ),
        pytest.param(
            {"A": ((), ("src/lib/*.py",)), "B": ((), ("src/lib/sub/util.py",))},
            [["A", "B"]],
            id="star-stays-in-its-directory",
        ),
        pytest.param(
            {"A": ((), ("src/",)), "B": ((), ("src/a/b/c.py",)), "C": ((), ("docs/x.md",))},
            [["A", "C"], ["B"]],
            id="directory-covers-everything-beneath",
        ),
    ],
)
def test_stages(graph: Graph, stages: list[list[str]]) -> None:
    assert stages_of(graph) == stages


def test_moves_are_reported_with_their_reasons() -> None:
    graph: Graph = {
        "A": ((), ("f.py",)),
        "B": ((), ("f.py", "g.py")),
        "C": ((), ("f.py",)),
        "D": (("C",), ()),
    }
    plan = plan_stages(items_of(graph))
    assert plan.moves == (
        Move(prp="B", from_stage=1, to_stage=2, because=("A",)),
        Move(prp="C", from_stage=1, to_stage=3, because=("A", "B")),
    )
    assert plan.stage_of("D") == 4  # where C's move put its dependent: no move of its own


def test_the_later_prp_by_order_moves() -> None:
    items = [
        PlanItem(id="A", files=("f.py",), order=2),
        PlanItem(id="B", files=("f.py",), order=1),
        PlanItem(id="C", files=("f.py",)),  # no order: after every ordered one
    ]
    plan = plan_stages(items)
    assert plan.stages == (("B",), ("A",), ("C",))
    assert [m.prp for m in plan.moves] == ["A", "C"]


def test_sorted_order_is_stage_then_order_then_id() -> None:
    items = [
        PlanItem(id="PRP-1.10", order=None),
        PlanItem(id="PRP-1.9", order=None),
        PlanItem(id="PRP-1.2", order=5),
        PlanItem(id="PRP-2.1", dependencies=("PRP-1.9",), order=1),
    ]
    plan = plan_stages(items)
    assert plan.sorted_order == ("PRP-1.2", "PRP-1.9", "PRP-1.10", "PRP-2.1")


def test_conflict_report_and_json_contract() -> None:
    graph: Graph = {
        "A": ((), ("./src/app/__init__.py", "src/a.py")),
        "B": (("A",), ("src/app/__init__.py",)),
        "C": ((), ("src//app/__init__.py",)),
    }
    plan = plan_stages(items_of(graph))
    assert plan.to_json() == {
        "sorted_order": ["A", "C", "B"],
        "stages": {"1": ["A"], "2": ["C"], "3": ["B"]},
        "file_conflicts": {"src/app/__init__.py": ["A", "B", "C"]},
        "has_cycles": False,
    }
    # By dependency depth C (depth 1) comes before B (depth 2), so C takes stage 2 first.
    assert plan.moves == (
        Move(prp="C", from_stage=1, to_stage=2, because=("A",)),
        Move(prp="B", from_stage=2, to_stage=3, because=("C",)),
    )


def test_conflicts_name_globs_and_the_paths_they_match() -> None:
    graph: Graph = {
        "A": ((), ("src/lib/*.py",)),
        "B": ((), ("src/lib/util.py",)),
        "C": ((), ("docs/",)),
    }
    assert file_conflicts(items_of(graph)) == {
        "src/lib/*.py": ("A", "B"),
        "src/lib/util.py": ("A", "B"),
    }


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("a.py", "b.py", False),
        ("./src/a.py", "src/a.py", True),
        ("src//a.py", "src/./a.py", True),
        ("src/lib/*.py", "src/lib/util.py", True),
        ("src/lib/*.py", "src/lib/util.md", False),
        ("src/**", "src/a/b/c.py", True),
        ("src/**/*.py", "src/x.py", True),
        ("src/**/*.py", "src/a/b/x.py", True),
        ("src/", "src/a/b.py", True),
        ("src/", "srcx/a.py", False),
        ("src/a?.py", "src/ab.py", True),
        ("src/[ab].py", "src/c.py", False),
        ("src/[!a].py", "src/b.py", True),
        # glob against glob: conservative, apart from clearly different prefixes or suffixes
        ("src/*.py", "src/lib/*", True),
        ("src/*.py", "src/*.md", False),
        ("docs/*.md", "src/*.md", False),
        ("*.py", "src/**", True),
        ("src/", "src/**/*.md", True),
    ],
)
def test_overlap(a: str, b: str, overlap: bool) -> None:
    for first, second in ((a, b), (b, a)):
        plan = plan_stages([PlanItem(id="A", files=(first,)), PlanItem(id="B", files=(second,))])
        assert len(plan.stages) == (2 if overlap else 1), (first, second)


def test_a_prp_never_conflicts_with_itself() -> None:
    plan = plan_stages([PlanItem(id="A", files=("src/*.py", "src/a.py", "./src/a.py"))])
    assert plan.stages == (("A",),)
    assert plan.file_conflicts == {}


# -- errors -----------------------------------------------------------------------------------


def ring(n: int) -> Graph:
    """P1 → P2 → ... → Pn → P1 (each depends on the next), plus a bystander and a dependent."""
    names = [f"P{k}" for k in range(1, n + 1)]
    graph: Graph = {name: ((names[(k + 1) % n],), ()) for k, name in enumerate(names)}
    graph["Z"] = ((), ())
    graph["Q"] = (("P1", "Z"), ())
    return graph


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_cycles_report_their_path(n: int) -> None:
    with pytest.raises(CycleError) as caught:
        plan_stages(items_of(ring(n)))
    names = tuple(f"P{k}" for k in range(1, n + 1))
    assert caught.value.cycle == (*names, "P1")
    message = str(caught.value)
    assert " → ".join((*names, "P1")) in message or n == 1
    assert all(f"{name}.md" in message for name in names)


def test_cycle_path_is_the_same_whatever_the_input_order() -> None:
    graph: Graph = {"C": (("A",), ()), "B": (("C",), ()), "A": (("B",), ()), "X": (("C",), ())}
    cycles = set()
    for order in itertools.permutations(items_of(graph)):
        with pytest.raises(CycleError) as caught:
            plan_stages(order)
        cycles.add(caught.value.cycle)
    assert cycles == {("A", "B", "C", "A")}


def test_self_dependency_is_a_cycle_of_one() -> None:
    with pytest.raises(CycleError, match=r"A \(A.md\) depends on itself") as caught:
        plan_stages(items_of({"A": (("A",), ())}))
    assert caught.value.cycle == ("A", "A")


def test_unknown_dependency() -> None:
    with pytest.raises(CeError, match=r"B \(B.md\) depends on X, which is not part of this plan"):
        plan_stages(items_of({"A": ((), ()), "B": (("A", "X"), ())}))


def test_duplicate_ids_name_both_files() -> None:
    items = [PlanItem(id="A", source="one.md"), PlanItem(id="A", source="two.md")]
    with pytest.raises(CeError, match=r"Duplicate PRP id A in one\.md and two\.md"):
        plan_stages(items)


def test_stage_of_unknown_id() -> None:
    with pytest.raises(KeyError):
        plan_stages([]).stage_of("A")


# -- properties -------------------------------------------------------------------------------

# The concrete paths each declared form covers: an oracle independent of the planner's matcher.
COVERS = {
    "a.py": {"a.py"},
    "./a.py": {"a.py"},
    "src/x.py": {"src/x.py"},
    "src/sub/z.py": {"src/sub/z.py"},
    "src/*.py": {"src/x.py", "src/y.py"},
    "src/": {"src/x.py", "src/y.py", "src/w.md", "src/sub/z.py", "src/sub/z.md"},
    "src/**/*.md": {"src/w.md", "src/sub/z.md"},
    "docs/*.md": {"docs/d.md"},
    "docs/d.md": {"docs/d.md"},
}


def really_overlap(a: PlanItem, b: PlanItem) -> bool:
    return any(COVERS[f] & COVERS[g] for f in a.files for g in b.files)


@st.composite
def dags(draw: st.DrawFn) -> list[PlanItem]:
    n = draw(st.integers(min_value=0, max_value=12))
    items = []
    for k in range(n):
        deps = draw(st.sets(st.integers(min_value=0, max_value=k - 1))) if k else set()
        items.append(
            PlanItem(
                id=f"PRP-{k}",
                dependencies=tuple(f"PRP-{d}" for d in sorted(deps)),
                files=tuple(draw(st.lists(st.sampled_from(sorted(COVERS)), max_size=3))),
                order=draw(st.none() | st.integers(min_value=0, max_value=3)),
            )
        )
    return items


@settings(max_examples=150)
@given(items=dags())
def test_plan_respects_dependencies_and_conflicts(items: list[PlanItem]) -> None:
    plan = plan_stages(items)
    assert sorted(plan.sorted_order) == sorted(i.id for i in items)
    assert all(plan.stages)  # no empty stage
    for item in items:
        assert all(plan.stage_of(d) < plan.stage_of(item.id) for d in item.dependencies)
    for a, b in itertools.combinations(items, 2):
        if really_overlap(a, b):
            assert plan.stage_of(a.id) != plan.stage_of(b.id), (a, b)


@settings(max_examples=150)
@given(items=dags())
def test_moves_go_no_further_than_needed(items: list[PlanItem]) -> None:
    plan = plan_stages(items)
    by_id = {i.id: i for i in items}
    moves = {m.prp: m for m in plan.moves}
    for item in items:
        wanted = 1 + max((plan.stage_of(d) for d in item.dependencies), default=0)
        stage = plan.stage_of(item.id)
        if stage == wanted:
            assert item.id not in moves
            continue
        assert moves[item.id] == Move(
            prp=item.id,
            from_stage=wanted,
            to_stage=stage,
            because=moves[item.id].because,
        )
        # Every skipped stage held an overlapping PRP (one placed before this one: a PRP placed
        # later may still land in an earlier stage, as it is not moved).
        because = moves[item.id].because
        assert all(really_overlap(item, by_id[other]) for other in because)
        assert {plan.stage_of(other) for other in because} == set(range(wanted, stage))


@given(items=dags(), data=st.data())
def test_plan_is_the_same_for_any_input_order(items: list[PlanItem], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(items))
    assert plan_stages(shuffled) == plan_stages(items)


def test_plans_compare_by_content() -> None:
    a = plan_stages(items_of({"A": ((), ("f",)), "B": ((), ("f",))}))
    b = plan_stages(items_of({"B": ((), ("f",)), "A": ((), ("f",))}))
    assert isinstance(a, Plan)
    assert a == b
    assert a.stage_of("B") == 2  # the cached index does not take part in equality
    assert a == b


@given(st.text(alphabet="PR-.0189a\u0663", max_size=10))
def test_id_key_splits_every_digit_run(prp_id: str) -> None:
    # The last number is appended to its stem's cached split: the same key as splitting it all.
    parts: list[int | str] = re.split(r"(\d+)", prp_id)
    parts[1::2] = [int(p) for p in parts[1::2]]
    assert id_key(prp_id) == (tuple(parts), prp_id)


def test_ids_sort_naturally() -> None:
    ids = ["PRP-9.10", "PRP-9.9", "PRP-10.1", "PRP-9.9a", "PRP-9", "9.1", "PRP-9.09"]
    assert sorted(ids, key=id_key) == [
        "9.1", "PRP-9", "PRP-9.09", "PRP-9.9", "PRP-9.9a", "PRP-9.10", "PRP-10.1"
    ]  # fmt: skip  # equal numbers: the raw id decides
