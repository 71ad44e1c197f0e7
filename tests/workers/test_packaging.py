"""【下载证书】's packaging job: a worker that dies half-way offers no half zip, and the
rerun (arq reruns a job whose worker died) finishes it."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.enums import JobStatus
from app.services import certificates
from app.settings import get_settings
from app.tables import Certificate, DownloadJob
from tests.helpers import (
    approved_booking,
    company_user,
    lab_certificate,
    lab_order,
    post,
    run_jobs,
)


class Killed(BaseException):
    """Stands for kill -9: nothing of the job's own error handling runs."""


async def _job(client: AsyncTestClient, n: int = 3) -> dict[str, Any]:
    await company_user(client)
    booking = await approved_booking(client, n)
    unique = await lab_order(client, booking["booking_no"], "DD7", n)
    for k, u in enumerate(unique):
        assert (await lab_certificate(client, f"ZS7-{k}", u)).status_code == 200
    ids = [str(c["id"]) for c in await Certificate.select(Certificate.id)]
    r = await post(client, "/certificates/download", {"ids": ids}, htmx=True)
    key = re.search(r"/certificates/jobs/([\w-]+)", r.text).group(1)
    return await DownloadJob.select().where(DownloadJob.key == key).first()


async def test_worker_killed_mid_zip_offers_nothing_then_rerun_finishes(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Let the queued run finish (in-process or through arq), then start over from a
    # queued job with no zip: the same state in either mode.
    job = await _job(client)
    await run_jobs(client)
    (get_settings().data_dir / "zips" / f"{job['key']}.zip").unlink()
    await DownloadJob.update({DownloadJob.status: JobStatus.QUEUED, DownloadJob.path: ""}).where(
        DownloadJob.id == job["id"]
    )
    real = certificates.certpdf.write_zip

    def dies_after_first_file(entries: Any, target: Path, progress: Any = None) -> None:
        def killed(done: int) -> None:
            raise Killed

        real(entries, target, killed)

    monkeypatch.setattr(certificates.certpdf, "write_zip", dies_after_first_file)
    with pytest.raises(Killed):
        await certificates.package(job["id"])
    target = get_settings().data_dir / "zips" / f"{job['key']}.zip"
    assert not target.exists()
    row = await DownloadJob.select().where(DownloadJob.id == job["id"]).first()
    assert row["status"] == JobStatus.RUNNING and not row["path"]
    r = await client.get(f"/certificates/jobs/{job['key']}/zip")
    assert r.status_code == 404
    r = await client.get(f"/certificates/jobs/{job['key']}", headers={"HX-Request": "true"})
    assert "正在打包" in r.text and "下载证书压缩包" not in r.text

    monkeypatch.setattr(certificates.certpdf, "write_zip", real)
    assert await certificates.package(job["id"]) == "done"
    assert await certificates.package(job["id"]) == "done"  # a second rerun: nothing more
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == ["ZS7-0.pdf", "ZS7-1.pdf", "ZS7-2.pdf"]
        assert archive.testzip() is None
    assert not target.with_suffix(".part").exists()
    r = await client.get(f"/certificates/jobs/{job['key']}/zip")
    assert r.status_code == 200
    downloaded = await Certificate.select(Certificate.downloaded_at)
    assert all(c["downloaded_at"] is not None for c in downloaded)
    assert json.loads(row["certificate_ids"]) and row["total"] == 3
