#!/usr/bin/env python3
"""Make an nbconvert HTML export work offline: drop the template's external
<script src="http..."> tags (require.js, MathJax; our charts need neither,
plotly.js is embedded by the notebook) and fail if any external script or
stylesheet remains. Also:

* drops the template's mermaid loader (a module script importing mermaid from
  cdnjs when a page has mermaid diagrams; ours have none);
* disarms the CDN, tile-server and basemap addresses that the embedded
  plotly.js carries as defaults for its map traces and geo base maps (our
  reports use none of them): `https://HOST` becomes `offline-disabled://HOST`,
  a scheme no browser fetches, so nothing can leave the machine even if a
  future chart used a map trace; then fails if any of those hosts remains.

Usage: offline_html.py REPORT.html [...]"""
import re
import sys

EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>\s*', re.I)
EXTERNAL_ANY = re.compile(r'<(script|link)[^>]*\b(src|href)="(https?:)?//[^"]*"', re.I)
MODULE_IMPORTING_URL = re.compile(
    r'<script type="module">(?:(?!</script>).)*?import\("https?://(?:(?!</script>).)*</script>\s*',
    re.S)
# Hosts that plotly.js (full bundle) or the template would fetch from.
RESOURCE_HOSTS = [
    "cdn.plot.ly", "cdnjs.cloudflare.com", "unpkg.com", "cdn.jsdelivr.net",
    "basemaps.cartocdn.com", "tiles.basemaps.cartocdn.com",
    "cartodb-basemaps-c.global.ssl.fastly.net", "fonts.openmaptiles.org",
    "tiles.stadiamaps.com", "server.arcgisonline.com", "tilemaps.icgc.cat",
    "geoserveis.icgc.cat", "tile.openstreetmap.org", "a.tile.openstreetmap.org",
    "b.tile.openstreetmap.org", "c.tile.openstreetmap.org", "api.mapbox.com",
    "api.mapbox.cn", "events.mapbox.com", "events.mapbox.cn",
]
HOST_URL = re.compile(r"https?://(" + "|".join(re.escape(h) for h in RESOURCE_HOSTS) + r")(?=[/\"'`\s]|$)")


def main(paths):
    status = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            html = f.read()
        html, n = EXTERNAL_SCRIPT.subn("", html)
        html, m = MODULE_IMPORTING_URL.subn("", html)
        html, k = HOST_URL.subn(lambda mo: "offline-disabled://" + mo.group(1), html)
        left = EXTERNAL_ANY.findall(html) + [u.group(0) for u in HOST_URL.finditer(html)]
        left += re.findall(r'import\("https?://[^"]*"\)', html)
        with open(path, "w", encoding="utf-8") as f:
            f.write(html)
        if left:
            print(f"{path}: external resources remain: {left[:3]}", file=sys.stderr)
            status = 1
        else:
            print(f"{path}: removed {n} external script tags and {m} module loaders, "
                  f"disarmed {k} CDN/tile addresses; offline", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
