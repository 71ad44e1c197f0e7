"""【下载证书】's zip: ``certzip.write_zip`` against a bare ``zipfile`` loop over the same
1,000 certificate PDFs of ~200 KB.

    .venv/bin/python bench/certificates.py [--files 1000] [--kb 200] [--rounds 3]

Each measurement runs in a fresh child process (this script with ``--child``), so the
peak RSS growth of one does not hide in another's: the child notes its RSS once its
imports are done, writes the zip, and reports its peak (VmHWM) minus that. Rounds
alternate app / bare; the table shows the median time and the largest growth. The bare
loop is also run with ZIP_DEFLATED level 1, the figure behind ``ZIP_COMPRESSION``.

Targets: write_zip within 1.3× the bare loop's time, and RSS growth ≤ 50 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import PY, log, print_table  # noqa: E402

TIME_RATIO_TARGET = 1.3
RSS_TARGET_MB = 50.0


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def make_pdfs(folder: Path, files: int, kb: int) -> list[tuple[str, Path]]:
    """One fpdf2 certificate with a noise image (so ~``kb`` KB that do not compress, like
    a scanned seal), copied ``files`` times with a different comment after %%EOF."""
    from fpdf import FPDF  # not at the top: the children import only what they measure
    from PIL import Image

    rnd = random.Random(7)
    side = int((kb * 1024 / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="Calibration certificate")
    pdf.image(image, x=20, y=40, w=80)
    data = bytes(pdf.output())
    entries = []
    for i in range(files):
        path = folder / f"{i:05d}.pdf"
        path.write_bytes(data + b"%% copy %d\n" % i)
        entries.append((f"JL2026-{i:06d}_压力表.pdf", path))
    return entries


def child(mode: str, folder: Path, target: Path) -> None:
    """Write the zip one way and print {seconds, rss_mb, bytes} as JSON."""
    from app.services.certzip import write_zip  # not in the bare child

    paths = sorted(folder.glob("*.pdf"))
    entries = [(f"JL2026-{i:06d}_压力表.pdf", p) for i, p in enumerate(paths)]
    base_kb = _status_kb("VmRSS")
    started = time.perf_counter()
    if mode == "app":
        write_zip(entries, target, progress=lambda n: None)
    else:
        compression, level = {
            "bare": (zipfile.ZIP_STORED, None),
            "bare-deflate1": (zipfile.ZIP_DEFLATED, 1),
        }[mode]
        with zipfile.ZipFile(target, "w", compression=compression, compresslevel=level) as zf:
            for name, path in entries:
                zf.write(path, name)
    seconds = time.perf_counter() - started
    growth_mb = (_status_kb("VmHWM") - base_kb) / 1024
    size = target.stat().st_size
    print(json.dumps({"seconds": seconds, "rss_mb": growth_mb, "bytes": size}))


def run_child(mode: str, folder: Path, out: Path) -> dict[str, float]:
    target = out / f"{mode}.zip"
    r = subprocess.run(
        [PY, __file__, "--child", mode, str(folder), str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{r.stdout}\n{r.stderr}")
    target.unlink()
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--kb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FOLDER", "TARGET"))
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="jlkf-bench-cert-"))
    try:
        src, out = tmp / "pdfs", tmp / "out"
        src.mkdir()
        out.mkdir()
        started = time.monotonic()
        entries = make_pdfs(src, args.files, args.kb)
        total = sum(p.stat().st_size for _, p in entries)
        log(
            f"{len(entries)} PDFs of {total / len(entries) / 1024:.0f} KB "
            f"({total / 2**20:.0f} MB) made in {time.monotonic() - started:.1f} s"
        )
        modes = ["app", "bare", "bare-deflate1"]
        results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else list(reversed(modes)):
                results[mode].append(run_child(mode, src, out))
        summary = {
            m: {
                "seconds": statistics.median(x["seconds"] for x in rs),
                "rss_mb": max(x["rss_mb"] for x in rs),
                "bytes": rs[0]["bytes"],
            }
            for m, rs in results.items()
        }
        bare = summary["bare"]
        rows = []
        for m in modes:
            s = summary[m]
            rows.append(
                [
                    m,
                    f"{s['seconds']:.3f}",
                    f"{s['seconds'] / bare['seconds']:.2f}",
                    f"{s['rss_mb']:.1f}",
                    f"{s['bytes'] / 2**20:.1f}",
                    f"{s['bytes'] / total:.3f}",
                ]
            )
        log("")
        print_table(
            rows,
            ["zip", "seconds", "× bare", "RSS growth MB", "zip MB", "size ratio"],
            right={1, 2, 3, 4, 5},
        )
        app = summary["app"]
        ratio = app["seconds"] / bare["seconds"]
        log("")
        log(
            f"time   write_zip {ratio:.2f}× bare (target ≤ {TIME_RATIO_TARGET}×): "
            f"{'PASS' if ratio <= TIME_RATIO_TARGET else 'MISS'}"
        )
        log(
            f"memory write_zip +{app['rss_mb']:.1f} MB (target ≤ {RSS_TARGET_MB:.0f} MB): "
            f"{'PASS' if app['rss_mb'] <= RSS_TARGET_MB else 'MISS'}"
        )
        d1 = summary["bare-deflate1"]
        log(
            f"deflate level 1 vs stored: {d1['seconds'] / bare['seconds']:.2f}× the time for "
            f"{(1 - d1['bytes'] / bare['bytes']) * 100:.1f} % smaller"
        )
        return 0 if ratio <= TIME_RATIO_TARGET and app["rss_mb"] <= RSS_TARGET_MB else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
