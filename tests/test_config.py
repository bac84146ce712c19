"""The configuration keeps its keys where the file has them: related top-level keys are grouped
in sub-records of `Config` (issue 12: no class over 12 attributes), which the file never names."""

from __future__ import annotations

from pathlib import Path

import pytest

from ce.config import Config, load_config
from ce.core.errors import CeError


def write(root: Path, text: str) -> None:
    (root / ".ce").mkdir(exist_ok=True)
    (root / ".ce" / "config.toml").write_text(text, encoding="utf-8")


def test_top_level_keys_land_in_their_sub_records(tmp_path: Path) -> None:
    write(
        tmp_path,
        "max_parallel = 2\nmerge_parallel = 3\nmerge_batch = 4\nsparse = true\n"
        'auto_review = false\nconflict_policy = "rerun"\n[validate]\nlevel3 = "true"\n',
    )
    config = load_config(tmp_path, {"schedule": "eager"})
    assert (config.run.max_parallel, config.run.schedule) == (2, "eager")
    assert (config.lane.merge_parallel, config.lane.merge_batch) == (3, 4)
    assert config.lane.conflict_policy == "rerun"
    assert config.worktrees.sparse and not config.reviews.auto_review
    assert config.validation.level3 == "true"


def test_the_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == Config()
    assert (config.lane.merge_parallel, config.lane.merge_batch) == (None, 1)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("merge_batch = 0\n", "  merge_batch: Input should be greater than or equal to 1"),
        ("merge_parallel = 'x'\n", "  merge_parallel: Input should be a valid integer"),
        ("[lane]\nmerge_batch = 2\n", "  lane: unknown setting"),
        ("run = 3\n", "  run: unknown setting"),
    ],
)
def test_a_mistake_names_the_key_as_the_file_has_it(tmp_path: Path, text: str, said: str) -> None:
    write(tmp_path, text)
    with pytest.raises(CeError) as caught:
        load_config(tmp_path)
    assert "config.toml: invalid configuration:\n" in str(caught.value)
    assert said in str(caught.value)
