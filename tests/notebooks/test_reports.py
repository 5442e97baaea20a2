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

NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_report_exists_with_chart_data_and_no_external_script(name):
    html = (REPORTS / f"{name}.html").read_text(encoding="utf-8")
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
