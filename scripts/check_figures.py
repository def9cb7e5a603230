#!/usr/bin/env python3
"""Open each results page in headless Chromium with no network and check that every
figure draws.

A page passes when (1) its source loads no script or stylesheet over http(s) and (2) in
the DOM Chromium renders, every plotly figure div of the source holds plotly's drawn
SVG (`main-svg`). The network is taken away with `unshare -n` (a network namespace with
no interface but loopback); where that is not permitted, Chromium is pointed at a proxy
that does not exist, which fails every http(s) request just the same.

Usage: scripts/check_figures.py PAGE.html [...]   (exit 1 if a page fails)
Standard library only; needs Debian's `chromium`.
"""

import html.parser
import os
import re
import subprocess
import sys
import tempfile

import headless_chromium

REMOTE = re.compile(
    r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I
)


class Figures(html.parser.HTMLParser):
    """Counts plotly figure divs, and those that contain a drawn `main-svg`."""

    def __init__(self):
        super().__init__()
        self.figures = 0
        self.drawn = 0
        self.depth = 0  # > 0 inside a figure div
        self.seen_svg = False

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self.depth:
            self.depth += tag not in VOID
            if "main-svg" in classes:
                self.seen_svg = True
        elif tag == "div" and "plotly-graph-div" in classes:
            self.figures += 1
            self.depth, self.seen_svg = 1, False

    def handle_endtag(self, tag):
        if self.depth and tag not in VOID:
            self.depth -= 1
            if self.depth == 0 and self.seen_svg:
                self.drawn += 1


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}


def offline_prefix():
    """How to run a command without network: `unshare -n` if allowed, else nothing (the
    dead proxy below then blocks http(s))."""
    try:
        ok = subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        ok = False
    return ["unshare", "-n"] if ok else []


def render(page, prefix, profile):
    if headless_chromium.executable() is None:
        sys.exit("check_figures: chromium is not installed (Debian package `chromium`)")
    command = prefix + headless_chromium.dump_dom_command(
        "file://" + os.path.abspath(page), profile, 60000,
        extra=["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"])
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        sys.exit(f"check_figures: chromium failed on {page}:\n{result.stderr[-2000:]}")
    return result.stdout


def main(pages):
    if not pages:
        sys.exit(__doc__)
    prefix = offline_prefix()
    network = "unshare -n" if prefix else "a dead proxy"
    failed = 0
    with tempfile.TemporaryDirectory() as profile:
        for page in pages:
            source = open(page, encoding="utf-8").read()
            remote = REMOTE.findall(source)
            expected = Figures()
            expected.feed(source)
            seen = Figures()
            seen.feed(render(page, prefix, profile))
            ok = not remote and expected.figures > 0 and seen.drawn == expected.figures
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {page}: {seen.drawn} of {expected.figures} "
                  f"figures drawn offline ({network})"
                  + (f"; remote sources: {remote}" if remote else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
