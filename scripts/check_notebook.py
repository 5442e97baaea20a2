#!/usr/bin/env python3
"""Fail when an executed notebook holds an error output or anything on stderr.

evcxr reports some failures without failing nbconvert: a top-level `?` on an
Err only prints the error to stderr. So any stderr output counts as a failed
cell: notebooks keep stderr clean, and this check makes `make reports` fail.
Usage: check_notebook.py EXECUTED.ipynb [...]
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
                    yield i, "stderr: " + text.strip()[:500]


def main(paths):
    failed = False
    for path in paths:
        for i, msg in problems(path):
            failed = True
            print(f"{path}: cell {i} failed: {msg}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
