"""查询服务 and 电子证书 through HTTP: progress, the list, unpaid refusal, the zip job, file
names, 证书防伪查询 and the verification link; tenancy everywhere."""

from __future__ import annotations

import io
import re
import zipfile

from litestar.testing import AsyncTestClient

from app.security.sessions import auth_changed
from app.settings import get_settings
from app.tables import Certificate, CertificateFile, DownloadJob, Enterprise
from tests.helpers import (
    LAB_AUTH,
    approved_booking,
    company_user,
    lab_certificate,
    lab_order,
    make_pdf,
    post,
    run_jobs,
    set_session_cookie,
)


async def _issued(client: AsyncTestClient, paid: bool = True) -> list[str]:
    await company_user(client)
    booking = await approved_booking(client)
    unique = await lab_order(client, booking["booking_no"], "DD100")
    assert (await lab_certificate(client, "ZS-100", unique[0], paid=paid)).status_code == 200
    assert (await lab_certificate(client, "ZS-101", unique[1], paid=False)).status_code == 200
    return unique


async def _zip(client: AsyncTestClient, ids: list[int]) -> zipfile.ZipFile:
    r = await post(client, "/certificates/download", {"ids": [str(i) for i in ids]}, htmx=True)
    assert r.status_code == 200, r.text
    key = re.search(r"/certificates/jobs/([\w-]+)", r.text).group(1)
    await run_jobs(client)
    r = await client.get(f"/certificates/jobs/{key}", headers={"HX-Request": "true"})
    assert "下载证书压缩包" in r.text, r.text
    r = await client.get(f"/certificates/jobs/{key}/zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.content))


async def test_progress_lookup_as_typed(client: AsyncTestClient) -> None:
    unique = await _issued(client)
    r = await client.get("/query/progress?q=DD10", headers={"HX-Request": "true"})
    assert r.status_code == 200 and unique[0] in r.text and "待收样" in r.text
    assert "every 30s" in r.text  # not all collected: it refreshes itself
    for u in unique:
        await client.post(
            f"/api/v1/instruments/{u}/status", json={"status": "已取件"}, headers=LAB_AUTH
        )
    r = await client.get(f"/query/progress?q={unique[0]}")
    assert "<html" in r.text and "已取件" in r.text and "every 30s" not in r.text
    r = await client.get("/query/progress?q=NOPE", headers={"HX-Request": "true"})
    assert "未找到" in r.text


async def test_progress_lookup_takes_wildcards_as_characters(client: AsyncTestClient) -> None:
    """A number starts with exactly what was typed: ``%`` and ``_`` are characters (LIKE took
    them as wildcards); the whole number and a prefix of the 大单号 still find it."""
    unique = await _issued(client)  # DD100-001, DD100-002
    other = await approved_booking(client)
    await lab_order(client, other["booking_no"], "DX1_0", n=1)  # a _ in a real number

    async def found(q: str) -> str:
        r = await client.get("/query/progress", params={"q": q}, headers={"HX-Request": "true"})
        assert r.status_code == 200, r.text
        return r.text

    for q in ("DD%", "D_100", "%%", "__", "DD1%0", "DD100-00_", "DX1%"):
        text = await found(q)
        assert "未找到" in text and unique[0] not in text and "DX1_0" not in text, q
    text = await found("DX1_")  # the _ typed is the number's own
    assert "DX1_0-001" in text and unique[0] not in text
    assert unique[0] in await found(unique[0]) and unique[1] not in await found(unique[0])
    text = await found("DD100-")
    assert unique[0] in text and unique[1] in text and "DX1_0" not in text


async def test_list_unpaid_red_and_refused(client: AsyncTestClient) -> None:
    await _issued(client, paid=False)
    r = await client.get("/certificates")
    assert r.status_code == 200
    assert '<span class="unpaid">ZS-100</span>' in r.text and "未缴费" in r.text
    ids = [c["id"] for c in await Certificate.select(Certificate.id)]
    # No tick box for an unpaid certificate; a forged tick or the URL is refused too.
    assert f'name="ids" value="{ids[0]}"' not in r.text
    r = await post(client, "/certificates/download", {"ids": [str(ids[0])]}, htmx=True)
    assert "未缴费" in r.text and await DownloadJob.count() == 0
    # The refusal replaces the list; it does not land in the download area as a second list.
    assert r.headers["HX-Retarget"] == "#certificate-list"
    assert r.headers["HX-Reswap"] == "outerHTML"
    r = await client.get(f"/certificates/{ids[0]}/file")
    assert r.status_code == 409 and "未缴费" in r.text


async def test_zip_download_marks_downloaded_and_follows_the_rule(client: AsyncTestClient) -> None:
    await _issued(client)
    cert = await Certificate.select().where(Certificate.cert_no == "ZS-100").first()
    archive = await _zip(client, [cert["id"]])
    assert archive.namelist() == ["ZS-100.pdf"]
    assert archive.read("ZS-100.pdf").startswith(b"%PDF-")
    r = await client.get("/certificates?downloaded=yes")
    assert "ZS-100" in r.text and "已下载" in r.text
    # 【自定义文件名】: 器具名称 + 出厂编号.
    form = {"pick": ["name", "serial_no"], "action": "add", "rule": ["cert_no"]}
    r = await post(client, "/certificates/rule", form, htmx=True)
    assert "器具名称" in r.text
    r = await post(client, "/certificates/rule", {"rule": ["cert_no"], "action": "remove:cert_no"})
    save = {"rule": ["name", "serial_no"], "action": "save"}
    r = await post(client, "/certificates/rule", save, htmx=True)
    assert "已保存" in r.text
    archive = await _zip(client, [cert["id"]])
    assert archive.namelist() == ["温度计1_T-1.pdf"]


async def test_contract_user_downloads_unpaid(client: AsyncTestClient) -> None:
    await _issued(client, paid=False)
    await Enterprise.update({Enterprise.is_contract: True}).where(Enterprise.id > 0)
    await auth_changed()  # made behind the app's back: its cached users are read again
    cert = await Certificate.select().where(Certificate.cert_no == "ZS-100").first()
    r = await client.get(f"/certificates/{cert['id']}/file")
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")


async def test_verify_upload_and_link(client: AsyncTestClient) -> None:
    await _issued(client)
    cert = await Certificate.select().where(Certificate.cert_no == "ZS-100").first()
    r = await client.get(f"/certificates/{cert['id']}/file")
    issued = r.content
    set_session_cookie(client, None)  # anyone may verify, without an account

    async def verdict(data: bytes) -> str:
        r = await post(client, "/query/verify", files={"file": ("x.pdf", data)}, htmx=True)
        assert r.status_code == 200, r.text
        return r.text

    assert "核验通过" in await verdict(issued) and "ZS-100" in await verdict(issued)
    assert "篡改" in await verdict(issued + b"\n% changed after issue\n")
    assert "非本平台" in await verdict(make_pdf("someone else"))
    assert "不是可读的PDF" in await verdict(b"PNG\x89 not a pdf")
    link = re.search(rb"https?://[^\s()<>]+/verify/ZS-100/\w+", issued)
    if link is None:  # the URL may be split across text operators: build it as stamped
        from app.services.certificates import verify_url

        path = verify_url("ZS-100", 1).split("/", 3)[3]
    else:
        path = link.group(0).decode().split("/", 3)[3]
    r = await client.get("/" + path)
    assert r.status_code == 200 and "核验通过" in r.text
    r = await client.get("/verify/ZS-100/wrongcode")
    assert "非本平台" in r.text


async def test_other_enterprise_sees_nothing(client: AsyncTestClient) -> None:
    unique = await _issued(client)
    cert = await Certificate.select().where(Certificate.cert_no == "ZS-100").first()
    r = await post(client, "/certificates/download", {"ids": [str(cert["id"])]}, htmx=True)
    key = re.search(r"/certificates/jobs/([\w-]+)", r.text).group(1)
    await run_jobs(client)
    await company_user(client, 2)  # another company, logged in on the same client
    r = await client.get(f"/query/progress?q={unique[0]}", headers={"HX-Request": "true"})
    assert "未找到" in r.text and "<table" not in r.text
    assert "ZS-100" not in (await client.get("/certificates")).text
    assert (await client.get(f"/certificates/{cert['id']}/file")).status_code == 404
    assert (await client.get(f"/certificates/jobs/{key}")).status_code == 404
    assert (await client.get(f"/certificates/jobs/{key}/zip")).status_code == 404
    r = await post(client, "/certificates/download", {"ids": [str(cert["id"])]}, htmx=True)
    assert r.status_code == 404


async def test_a_lost_certificate_file_is_a_404(client: AsyncTestClient) -> None:
    await _issued(client)
    cert = await Certificate.select().where(Certificate.cert_no == "ZS-100").first()
    row = await CertificateFile.select().where(CertificateFile.certificate == cert["id"]).first()
    (get_settings().data_dir / row["path"]).unlink()
    r = await client.get(f"/certificates/{cert['id']}/file")
    assert r.status_code == 404 and "证书文件不存在" in r.text
