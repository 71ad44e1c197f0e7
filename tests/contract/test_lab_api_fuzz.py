"""Schemathesis against the served lab API: every check, every phase (the stateful one
walks the schema's links), a fixed seed, 200 examples per operation. Any failure prints
schemathesis's report with a curl line that reproduces it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "schemathesis", reason="schemathesis is a dev dependency: pip install -e .[dev]"
)

SEED = 20261126
EXAMPLES = 200
ROOT = Path(__file__).resolve().parents[2]


def test_schemathesis_finds_nothing(lab_data: Any, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{lab_data.base_url}/schema/openapi.json",
        "--header",
        f"Authorization: Bearer {lab_data.token}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        str(SEED),
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "SCHEMATHESIS_HOOKS": "tests.contract.st_hooks",
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    print(run.stdout[-3000:])  # the summary, shown with -s or -rP
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
