#!/usr/bin/env python3
"""The reports' index: what each exported notebook is, when it ran and on which data.

Usage:
  report_index.py --fingerprint DATA_DIR
      print the data fingerprint: SHA-256 over the curated table files under
      DATA_DIR (relative path and bytes of every *.parquet file, in sorted
      order), first 16 hex digits. Same files, same fingerprint.
  report_index.py --record REPORTS NAME EXECUTED.ipynb DATA_DIR FINGERPRINT SECONDS
      write REPORTS/.meta/NAME.json for one report just exported
  report_index.py --index REPORTS
      write REPORTS/index.html from every REPORTS/.meta/*.json (all-or-nothing)

Dates are shown the Brazilian way (dd/mm/aaaa HH:MM); the page loads nothing
from the network.
"""
import datetime
import hashlib
import html
import json
import os
import pathlib
import sys
import tempfile


def fingerprint(data_dir):
    root = pathlib.Path(data_dir)
    files = sorted(p for p in root.rglob("*.parquet") if p.is_file())
    if not files:
        raise SystemExit(f"report_index: no Parquet files under {root} (expected the curated tables)")
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root).as_posix().encode()
        h.update(len(rel).to_bytes(8, "little") + rel)
        h.update(p.stat().st_size.to_bytes(8, "little"))
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def title_of(executed):
    nb = json.loads(pathlib.Path(executed).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        for line in "".join(cell.get("source", [])).splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return pathlib.Path(executed).stem


def write_atomic(path, text):
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def record(reports, name, executed, data_dir, fp, seconds):
    meta = {
        "name": name,
        "title": title_of(executed),
        "executed_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "data": str(pathlib.Path(data_dir).resolve()),
        "fingerprint": fp,
        "seconds": int(seconds),
        "reader": f"{name}.html",
        "code": f"{name}.code.html",
    }
    d = pathlib.Path(reports) / ".meta"
    d.mkdir(parents=True, exist_ok=True)
    write_atomic(d / f"{name}.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def brazilian(iso):
    t = datetime.datetime.fromisoformat(iso)
    return t.strftime("%d/%m/%Y %H:%M")


def index(reports):
    reports = pathlib.Path(reports)
    metas = []
    for p in sorted((reports / ".meta").glob("*.json")):
        m = json.loads(p.read_text(encoding="utf-8"))
        # A report whose files are gone is not listed.
        if (reports / m["reader"]).exists():
            metas.append(m)
    rows = "\n".join(
        "<tr>"
        f'<td><a href="{html.escape(m["reader"])}">{html.escape(m["title"])}</a></td>'
        f'<td><a href="{html.escape(m["code"])}">with code</a></td>'
        f'<td>{html.escape(brazilian(m["executed_at"]))}</td>'
        f'<td><code>{html.escape(m["fingerprint"])}</code></td>'
        f'<td title="{html.escape(m["data"])}">{html.escape(pathlib.Path(m["data"]).name)}</td>'
        f'<td class="n">{m["seconds"]} s</td>'
        "</tr>"
        for m in metas)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sales analytics reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #ddd; }}
td.n {{ text-align: right; }}
th {{ background: #f4f4f4; }}
p.note {{ color: #555; }}
</style></head>
<body>
<h1>Sales analytics reports</h1>
<p class="note">Each report tells one part of the story; "with code" is the full notebook.
Dates are when the notebook ran; the data fingerprint identifies the curated files it ran on
(SHA-256 of the table files): two reports with the same fingerprint saw the same data.</p>
<table>
<thead><tr><th>Report</th><th>Full notebook</th><th>Run on</th><th>Data fingerprint</th><th>Data folder</th><th>Run time</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body></html>
"""
    write_atomic(reports / "index.html", page)


def main(argv):
    if len(argv) == 2 and argv[0] == "--fingerprint":
        print(fingerprint(argv[1]))
    elif len(argv) == 7 and argv[0] == "--record":
        record(*argv[1:])
    elif len(argv) == 2 and argv[0] == "--index":
        index(argv[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
