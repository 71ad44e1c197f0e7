"""docs/lab-api.md's curl examples run as written, in order, against the served app."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_pdf

DOC = Path(__file__).resolve().parents[2] / "docs" / "lab-api.md"


def _examples() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_examples_run_as_written(lab_data: Any, tmp_path: Path) -> None:
    examples = _examples()
    assert len(examples) == 6, (
        "the doc's sequence: list, review, order, status, certificate, payment"
    )
    (tmp_path / "certificate.pdf").write_bytes(make_pdf("ZS-002"))
    env = {**os.environ, "API": lab_data.base_url, "TOKEN": lab_data.token}
    answers = []
    for script in examples:
        run = subprocess.run(
            ["sh", "-e", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, f"{script}\n{run.stdout}\n{run.stderr}"
        answers.append(json.loads(run.stdout))
    listed, review, order, status, cert, payment = answers
    assert "YY20261126000001" in [b["booking_no"] for b in listed["bookings"]]
    assert review["status"] == "已通过" and order["changed"] is True
    assert status["status"] == "检测中"
    assert cert["cert_no"] == "ZS-002" and cert["version"] == 1 and cert["paid"] is False
    assert payment["paid"] is True and payment["changed"] is True
