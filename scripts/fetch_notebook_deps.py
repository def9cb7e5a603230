#!/usr/bin/env python3
"""Download every crate the notebooks' `:dep` lines need, so that evcxr can run offline.

    python3 scripts/fetch_notebook_deps.py        # `just kernel` runs it

The kernel's init.evcxr sets `:offline 1`: without it, each `:dep` line makes evcxr resolve
the dependency graph against the crates.io index over the network (a `cargo metadata` per
`:dep` line, on a throwaway manifest without a lockfile), which cost the first cell of a
notebook about 2 s of its 8-9 s here. Offline, cargo resolves from the local registry cache, which must then hold
every crate: this script collects the `:dep` lines of notebooks/*.ipynb into a throwaway
crate and runs `cargo fetch` on it (online, once; a no-op when everything is there).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
DEP_LINE = re.compile(r"^:dep\s+([A-Za-z0-9_-]+)\s*=\s*(.+?)\s*$")
PATH_VALUE = re.compile(r'path\s*=\s*"([^"]*)"')


def notebook_deps(notebooks: list[Path]) -> dict[str, str]:
    """Crate name → its TOML specification (relative paths made absolute), over every
    notebook; a crate given two different specifications is an error."""
    deps: dict[str, str] = {}
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for line in "".join(cell["source"]).splitlines():
                match = DEP_LINE.match(line.strip())
                if not match:
                    continue
                name, spec = match.groups()
                spec = PATH_VALUE.sub(lambda m: f'path = "{(path.parent / m.group(1)).resolve()}"', spec)
                if deps.setdefault(name, spec) != spec:
                    raise SystemExit(f"fetch: {path.name} asks for {name} = {spec}, another notebook for {deps[name]}")
    return deps


def main() -> int:
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    deps = notebook_deps(notebooks)
    if not deps:
        print("fetch: no :dep line in the notebooks", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        crate = Path(tmp)
        lines = "\n".join(f"{name} = {spec}" for name, spec in sorted(deps.items()))
        (crate / "Cargo.toml").write_text(
            f'[package]\nname = "notebook-deps"\nversion = "0.0.0"\nedition = "2024"\n\n'
            f'[lib]\npath = "lib.rs"\n\n[dependencies]\n{lines}\n'
        )
        (crate / "lib.rs").write_text("")
        done = subprocess.run(["cargo", "fetch", "--quiet", "--manifest-path", str(crate / "Cargo.toml")])
    if done.returncode == 0:
        print(f"fetch: the crates of {len(deps)} notebook dependencies are in the local registry cache "
              f"({', '.join(sorted(deps))})")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
