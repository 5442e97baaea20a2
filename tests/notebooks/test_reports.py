"""Checks on the notebooks' HTML reports, and on the runner's failure modes.

`make test-notebooks` executes every notebook on small generated data into
$REPORTS_DIR first; these tests read what it wrote.
"""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORTS = pathlib.Path(os.environ.get("REPORTS_DIR", ROOT / "reports"))
sys.path.insert(0, str(ROOT / "scripts"))
import nbbuild  # noqa: E402
import offline_html  # noqa: E402
import report_index  # noqa: E402

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


# Each notebook is exported twice: the reader's version (NAME.html, no code)
# and the full notebook (NAME.code.html).
@pytest.mark.parametrize("variant", ["", ".code"])
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_report_exists_with_chart_data_and_no_external_script(name, variant):
    html = (REPORTS / f"{name}{variant}.html").read_text(encoding="utf-8")
    # plotly.js is embedded, and every chart carries its data.
    assert "plotly.js v" in html
    calls = re.findall(r"Plotly\.newPlot\(\s*\"(chart-[^\"]+)\",\s*\{\"data\":\[\{", html)
    assert calls, "no chart with data"
    assert len(set(calls)) == len(calls), "chart ids must be unique"
    # Offline: no script or stylesheet from the network.
    external = re.findall(r'<(?:script|link)[^>]*\b(?:src|href)="(?:https?:)?//[^"]*"', html)
    assert external == [], external
    # No CDN, tile-server or basemap address that a script could fetch from
    # (plotly.js carries some as map defaults; offline_html.py disarms them),
    # and no module script importing from the network (nbconvert's mermaid loader).
    fetchable = [m.group(0) for m in offline_html.HOST_URL.finditer(html)]
    assert fetchable == [], fetchable[:5]
    assert not re.search(r'import\("https?://', html)
    # No failed cell made it into the report.
    assert "panicked" not in html
    assert 'class="jp-OutputArea-output jp-RenderedText" data-mime-type="application/vnd.jupyter.stderr"' not in html


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_readers_version_has_no_code_and_the_full_one_has(name):
    reader = (REPORTS / f"{name}.html").read_text(encoding="utf-8")
    full = (REPORTS / f"{name}.code.html").read_text(encoding="utf-8")
    # The first cell of every notebook imports the library by its path (the
    # code is syntax-highlighted: the string literal is one token).
    # (The stylesheet names the classes in both, and markdown cells have an
    # input area too: look for the code editor's elements.)
    input_area = re.compile(r'class="[^"]*\bjp-InputArea-editor\b')
    assert '"../analytics-lib"' in full
    assert input_area.search(full)
    assert '"../analytics-lib"' not in reader
    assert not input_area.search(reader)
    # Same story and same charts in both.
    assert len(re.findall(r"Plotly\.newPlot\(", reader)) == len(re.findall(r"Plotly\.newPlot\(", full))
    # And the same prose: the notebook's title and every section heading.
    import json
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    headings = [line.lstrip("# ").strip() for c in nb["cells"] if c["cell_type"] == "markdown"
                for line in "".join(c["source"]).splitlines() if line.startswith("#")]
    assert len(headings) >= 5
    import html as html_lib
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", reader))
    for h in headings:
        h = re.sub(r"[*_`]", "", h)
        assert h in text, h


def test_the_index_links_every_report_with_its_date_and_data_fingerprint():
    html = (REPORTS / "index.html").read_text(encoding="utf-8")
    fp = report_index.fingerprint(os.environ["ANALYTICS_DATA"])
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    for name in NOTEBOOKS:
        row = re.search(rf'<tr><td><a href="{name}\.html">[^<]+</a></td><td><a href="{name}\.code\.html">'
                        rf'with code</a></td><td>(\d\d/\d\d/\d{{4}} \d\d:\d\d)</td><td><code>([0-9a-f]{{16}})</code>',
                        html)
        assert row, name
        assert row.group(2) == fp, (name, row.group(2), fp)
    assert not re.search(r'<(?:script|link)[^>]*\b(?:src|href)="(?:https?:)?//', html)


def test_the_fingerprint_follows_the_bytes(tmp_path):
    (tmp_path / "orders.parquet").write_bytes(b"abc")
    a = report_index.fingerprint(tmp_path)
    assert a == report_index.fingerprint(tmp_path)
    (tmp_path / "orders.parquet").write_bytes(b"abd")
    assert report_index.fingerprint(tmp_path) != a
    with pytest.raises(SystemExit, match="no Parquet files"):
        report_index.fingerprint(tmp_path / "missing")


def test_eda_report_tells_the_story_in_brazilian_format():
    html = (REPORTS / "01_eda.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    for heading in ["Can we trust the data?", "How does revenue move over time?",
                    "Which categories carry the business?", "Where in Brazil", "typical ticket",
                    "How do customers behave?", "What we learned"]:
        assert heading in text, heading
    # Computed numbers, formatted the Brazilian way (R$ 1.234,56 and dd/mm/aaaa).
    assert re.search(r"sold R\$ [\d.]+,\d\d in [\d.]+ completed orders", text)
    assert re.search(r"Up to \d\d/\d\d/\d{4}", text)
    assert re.search(r"churn rate is [\d,]+%", text)
    # Five interactive charts: trend, categories, map, tickets, cohorts.
    assert len(re.findall(r"Plotly\.newPlot\(", html)) >= 5


def test_segmentation_report_tells_the_story_in_brazilian_format():
    html = (REPORTS / "03_segmentation.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    for heading in ["What we cluster on, and why", "How many segments?", "The segments on a map",
                    "Profiles and names", "DBSCAN as a cross-check",
                    "What marketing should do with each segment"]:
        assert heading in text, heading
    # Computed numbers, formatted the Brazilian way (R$ 1.234,56 and dd/mm/aaaa).
    assert re.search(r"At \d\d/\d\d/\d{4}, [\d.]+ customers have bought", text)
    assert re.search(r"The median customer spent R\$ [\d.]+,\d\d but the mean is R\$ [\d.]+,\d\d", text)
    # The model's k comes from the default range 4..=8, chosen by silhouette.
    m = re.search(r"still chooses: k = (\d+) \(silhouette (-?\d+,\d+)\)", text)
    assert m and 4 <= int(m.group(1)) <= 8, m
    # Profile table: dates of the typical last order and money in R$.
    assert re.search(r"<td[^>]*>\d\d/\d\d/\d{4}</td>", html)
    assert re.search(r"<td[^>]*>R\$ [\d.]+,\d\d</td>", html)
    # Charts: k choice, PCA 2D, PCA 3D (rotatable), t-SNE, k-distance; a static SVG.
    assert len(re.findall(r"Plotly\.newPlot\(", html)) >= 5
    assert '"type":"scatter3d"' in html
    assert "<svg" in html
    assert "DBSCAN finds" in text and "customers noise" in text
    for name in ["Champions", "Hibernating", "Lost", "At risk", "Loyal", "Promising/New"]:
        if name in text:
            break
    else:
        raise AssertionError("no segment name in the report")


def run_notebook(tmp_path, source):
    nb = tmp_path / "broken.ipynb"
    built = nbbuild.build(source)
    for i, c in enumerate(built["cells"]):
        c["id"] = f"c{i}"
    import json
    nb.write_text(json.dumps(built), encoding="utf-8")
    env = dict(os.environ, REPORTS_DIR=str(tmp_path / "out"))
    return subprocess.run([str(ROOT / "scripts" / "run-notebooks.sh"), str(nb)],
                          env=env, capture_output=True, text=True, timeout=600)


def test_a_panicking_cell_fails_the_run(tmp_path):
    r = run_notebook(tmp_path, '%% code\nlet x = 2;\n%% code\npanic!("planted failure {}", x);\n')
    assert r.returncode != 0, r.stderr[-2000:]
    assert not (tmp_path / "out" / "broken.html").exists()


def test_a_compile_error_fails_the_run(tmp_path):
    r = run_notebook(tmp_path, '%% code\nlet y: u32 = "not a number";\n')
    assert r.returncode != 0, r.stderr[-2000:]


def test_an_err_at_top_level_fails_the_run(tmp_path):
    r = run_notebook(tmp_path, '%% code\nlet r: Result<u32, String> = Err("planted error".to_string());\nr?;\n')
    assert r.returncode != 0, r.stderr[-2000:]


def test_clv_report_tells_the_story_in_brazilian_format():
    html = (REPORTS / "04_clv.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    for heading in ["The purchase summary", "The two models and what their parameters say",
                    "Who is still active?", "Customer lifetime value over the next year",
                    "Holdout check: do the predictions come true?", "CLV by segment",
                    "What to do with it"]:
        assert heading in text, heading
    # Computed numbers, formatted the Brazilian way (R$ 1.234,56 and dd/mm/aaaa).
    assert re.search(r"[\d.]+ customers bought before \d\d/\d\d/\d{4}", text)
    assert re.search(r"BG/NBD: r = \d+,\d+, α = [\d.]+,\d+ days", text)
    assert re.search(r"worth R\$ [\d.]+,\d\d over the next 365 days", text)
    # The holdout check: expected against actual purchase days, with its chart.
    m = re.search(r"the models expected ([\d.]+) purchase days .* they bought on ([\d.]+) days", text)
    assert m, "no holdout sentence"
    assert int(m.group(2).replace(".", "")) > 0
    assert re.search(r"The segment worth the most over the next year is [^:]+: [\d.]+ customers", text)
    assert len(re.findall(r"Plotly\.newPlot\(", html)) >= 1
