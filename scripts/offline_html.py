#!/usr/bin/env python3
"""Make an nbconvert HTML export work offline: drop the template's external
<script src="http..."> tags (require.js, MathJax; our charts need neither,
plotly.js is embedded by the notebook) and fail if any external script or
stylesheet remains. Usage: offline_html.py REPORT.html [...]"""
import re
import sys

EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>\s*', re.I)
EXTERNAL_ANY = re.compile(r'<(script|link)[^>]*\b(src|href)="(https?:)?//[^"]*"', re.I)


def main(paths):
    status = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            html = f.read()
        html, n = EXTERNAL_SCRIPT.subn("", html)
        left = EXTERNAL_ANY.findall(html)
        with open(path, "w", encoding="utf-8") as f:
            f.write(html)
        if left:
            print(f"{path}: external resources remain: {left[:3]}", file=sys.stderr)
            status = 1
        else:
            print(f"{path}: removed {n} external script tags; offline", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
