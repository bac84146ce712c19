"""The PRP file `ce new` writes: every field the planner reads, an implementation section with
two phases and a `sh run` block, so that it parses and lints clean as written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from ce.core.errors import CeError
from ce.prp.normalize import one_line


def next_id(batch: str, existing: Iterable[str], stage: int | None) -> tuple[str, int]:
    """The next free `PRP-<batch>.<stage>.<n>` and its stage: in `stage`, else in the batch's
    last stage (stage 1 for a new batch). `existing` holds ids and file names."""
    taken: dict[int, set[int]] = {}
    prefix = re.compile(rf"PRP-{re.escape(batch)}\.(\d+)\.(\d+)(?:$|[-_]|\.md$)", re.I)
    for prp_id in existing:
        match = prefix.match(prp_id)
        if match:
            taken.setdefault(int(match[1]), set()).add(int(match[2]))
    chosen = stage if stage is not None else max(taken, default=1)
    number = max(taken.get(chosen, set()), default=0) + 1
    return f"PRP-{batch}.{chosen}.{number}", chosen


def skeleton(prp_id: str, title: str, *, batch: str, stage: int, example_file: str) -> str:
    title = one_line(title)
    if not title:
        raise CeError('the title is empty: give the PRP a title, e.g. ce new --batch 43 "Cache".')
    quoted = json.dumps(title, ensure_ascii=False)  # a JSON string is a YAML string
    return _TEMPLATE.format(
        prp_id=prp_id,
        title=title,
        quoted=quoted,
        batch=json.dumps(batch),
        stage=stage,
        file=example_file,
        line=f"{prp_id}: {title}".replace("'", ""),  # inside a single-quoted bash string
    )


_TEMPLATE = """\
---
prp_id: {prp_id}
title: {quoted}
status: planning  # ready to run; ce writes `completed` when it is merged
batch_id: {batch}
stage: {stage}  # a hint: the planner stages PRPs by their dependencies and files
dependencies: []  # the PRPs to merge first, e.g. [PRP-43.1.1]
files_modified: [{file}]  # repo-relative paths or globs this PRP changes
files_created: []
estimated_hours: 1
complexity: medium  # low | medium | high
model:  # haiku | sonnet | opus; empty: chosen from complexity, hours, files and phases
order:  # a tie-breaker between PRPs of one stage
validation: {{}}  # this PRP's own checks, e.g. {{level3: "pytest -q tests/test_x.py"}}
---

# {title}

## Goal

What this PRP delivers, and why.

## Implementation

### Phase 1: First step

What to do. An agent reads this section; the `script` executor runs the `sh run` blocks
(bash -euo pipefail, in the PRP's worktree), then commits the phase.

```sh run
mkdir -p "$(dirname {file})"
printf '%s\\n' '{line}' > {file}
```

### Phase 2: Second step

What to do next.

## Validation

The repository's checks run on every PRP (`[validate]` in the configuration); `validation:`
above adds this PRP's own.
"""
