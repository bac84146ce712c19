"""Child process of the script executor: `python -m ce.agents.script_runner PLAN.json`.

Kept free of heavy imports (no pydantic, no rich): it starts once per PRP.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ce import git, proc


def checkpoint_message(prp_id: str, number: int, title: str) -> str:
    return f"{prp_id}: Phase {number} - {title}"


def run_phase(repo: git.Repo, prp_id: str, phase: dict[str, object]) -> bool:
    number, title = int(str(phase["number"])), str(phase["title"])
    blocks = phase.get("blocks") or []
    assert isinstance(blocks, list)
    for index, block in enumerate(blocks, start=1):
        print(f"[ce] {prp_id} phase {number} block {index}/{len(blocks)}", flush=True)
        done = proc.run(["bash", "-euo", "pipefail", "-c", str(block)], cwd=repo.path, check=False)
        sys.stdout.write(done.stdout)
        sys.stdout.write(done.stderr)
        if done.returncode != 0:
            print(
                f"[ce] {prp_id}: phase {number} block {index} failed with exit code "
                f"{done.returncode}",
                flush=True,
            )
            return False
    repo.commit_all(checkpoint_message(prp_id, number, title), allow_empty=True)
    print(f"[ce] {prp_id}: committed phase {number} - {title}", flush=True)
    return True


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    repo = git.Repo(Path.cwd())
    for phase in plan["phases"]:
        if not run_phase(repo, plan["prp_id"], phase):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
