#!/usr/bin/env python3
"""Write a notebook file from a simple text format, so notebooks are reviewed
as plain text: cells are separated by lines `%% md` or `%% code`.
Usage: nbbuild.py SOURCE.txt OUT.ipynb"""
import json
import sys


def build(src):
    cells, kind, buf = [], None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        lines = [l + "\n" for l in text.split("\n")]
        if lines:
            lines[-1] = lines[-1].rstrip("\n")
        cell = {"cell_type": "markdown" if kind == "md" else "code", "metadata": {}, "source": lines}
        if kind == "code":
            cell.update({"execution_count": None, "outputs": []})
        cells.append(cell)

    for line in src.splitlines():
        if line.startswith("%% "):
            flush()
            kind, buf = line[3:].strip(), []
        else:
            buf.append(line)
    flush()
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {"codemirror_mode": "rust", "file_extension": ".rs",
                              "mimetype": "text/rust", "name": "Rust", "pygment_lexer": "rust",
                              "version": ""},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        nb = build(f.read())
    for i, c in enumerate(nb["cells"]):
        c["id"] = f"cell-{i:02d}"
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
