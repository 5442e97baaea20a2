#!/usr/bin/env python3
"""Fail when an executed notebook holds an error output or anything on stderr.

evcxr reports some failures without failing the execution: a top-level `?` on
an Err only prints the error to stderr (execute_notebook.py keeps that output in
its cell even when it arrives late). So any stderr output counts as a failed
cell: notebooks keep stderr clean, and this check makes `make reports` fail.
Usage: check_notebook.py EXECUTED.ipynb [...]
       check_notebook.py --drop-sentinel EXECUTED.ipynb       (runner: remove it before export)
"""
import json
import sys


def problems(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "error":
                yield i, f"{out.get('ename')}: {out.get('evalue')}"
            elif kind == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", []))
                if text.strip():
                    where = " (late output of the cell before)" if SENTINEL_TAG in cell.get(
                        "metadata", {}).get("tags", []) else ""
                    yield i, "stderr" + where + ": " + text.strip()[:500]


def main(paths):
    failed = False
    for path in paths:
        for i, msg in problems(path):
            failed = True
            print(f"{path}: cell {i} failed: {msg}", file=sys.stderr)
    return 1 if failed else 0


# The runner (execute_notebook.py) adds a last cell with this tag; see there.
SENTINEL_TAG = "runner-sentinel"


def drop_sentinel(path):
    """Remove the runner's last cell (after the check) before export."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    nb["cells"] = [c for c in nb["cells"]
                   if SENTINEL_TAG not in c.get("metadata", {}).get("tags", [])]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--drop-sentinel"] and len(args) == 2:
        sys.exit(drop_sentinel(args[1]))
    sys.exit(main(args))
