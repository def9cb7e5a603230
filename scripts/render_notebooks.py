#!/usr/bin/env python3
"""Execute the Rust notebooks headless and save them with their outputs, deterministically.

Each notebook runs top to bottom in the evcxr kernel ("rust") from its own directory, so that
`:dep policy-param = { path = ".." }` and the `../results/*.csv` reads resolve. The executed copy
is written back in place, or under --out DIR (what `just test-notebooks` does: the committed
notebooks stay untouched). A cell that errors, a kernel that dies or a Chromium that fails ends
the run with a non-zero exit status and a message naming the notebook.

The saved notebooks are committed, so a rerun on the same machine must give the same bytes:
 * execution timestamps, the kernel's language_info and stream chunking (which depends on
   when the kernel flushed) are dropped or normalized; execution counts are 1, 2, 3, ...;
 * every plotly figure (`application/vnd.plotly.v1+json`, what plotly's `evcxr_display()`
   emits) gets an `image/svg+xml` rendering in the same output, so that GitHub and nbviewer,
   which do not run plotly.js, show the figure while Jupyter Lab keeps the interactive one.
   The SVGs come from the plotly.js that ships in the venv's plotly wheel, run offline by
   headless Chromium (one start per notebook) with Math.random seeded, because plotly.js
   draws random ids for clip paths and gradients.
 * outputs must not name a path of this machine (the run fails if one does); wall-clock
   timings are kept out of the notebooks' printed output by the notebooks themselves.
"""

import argparse
import base64
import copy
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import plotly
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError, CellTimeoutError, DeadKernelError

import headless_chromium

REPO = Path(__file__).resolve().parent.parent
PLOTLY_MIME = "application/vnd.plotly.v1+json"
SVG_MIME = "image/svg+xml"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# Size of the static images: about the width Jupyter Lab gives a figure, and room for the
# long titles the notebooks use.
SVG_WIDTH, SVG_HEIGHT = 960, 540
# Prefixes of absolute paths that must not appear in saved outputs (the repository itself,
# home directories and temporary directories; evcxr compiles in a temporary directory).
MACHINE_PATHS = sorted({str(REPO) + "/", str(Path.home()) + "/", "/work/", "/root/", "/home/", "/tmp/",
                        tempfile.gettempdir() + "/"})


class RenderError(Exception):
    """A failure that ends the run with a message naming the notebook."""


class EvcxrClient(NotebookClient):
    """A NotebookClient that also keeps the output evcxr sends after a cell reported idle.

    evcxr_jupyter 0.22 forwards the program's stdout from another thread and can send the last
    lines of a cell after its idle status (evcxr issue #353); nbclient stops listening at idle
    and drops them, so a loaded machine lost a cell's last println! now and then. After idle we
    keep reading until the cell's messages have been quiet for LATE_OUTPUT_SECONDS.
    """

    LATE_OUTPUT_SECONDS = 0.5

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=self.LATE_OUTPUT_SECONDS))
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    pass


def execute(path: Path, timeout: int, record_timing: bool = False) -> tuple[nbformat.NotebookNode, list[float]]:
    """The executed notebook and each code cell's seconds (printed, never saved; they include
    the wait for late output). With `record_timing`, each code cell's metadata also keeps the
    kernel's timestamps (`execution`), which `normalize` drops."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    # nbformat would give a cell without an id a random one.
    for index, cell in enumerate(raw["cells"]):
        cell.setdefault("id", f"cell-{index:02d}")
    nb = nbformat.reads(json.dumps(raw), as_version=4)
    authored_metadata = copy.deepcopy(nb.metadata)
    # Jupyter's server names the notebook to its kernel so; scripts/evcxr_kernel.sh picks the
    # notebook's build directory from it.
    os.environ["JPY_SESSION_NAME"] = str(path)
    client = EvcxrClient(nb, kernel_name="rust", timeout=timeout, record_timing=record_timing,
                         resources={"metadata": {"path": str(path.parent)}})
    seconds = []
    client.on_cell_execute = lambda **_: seconds.append(-time.monotonic())
    client.on_cell_executed = lambda **_: seconds.__setitem__(-1, seconds[-1] + time.monotonic())
    try:
        client.execute()
    except CellExecutionError as e:
        # evcxr puts the compiler's message in the error output, not in the reply nbclient quotes.
        failed = [f"cell {index}: {out.ename}: {out.evalue}\n" + "\n".join(out.get("traceback", []))
                  for index, cell in enumerate(nb.cells) for out in cell.get("outputs", [])
                  if out.output_type == "error"]
        raise RenderError(f"{path}: a cell failed:\n" + ("\n".join(failed) or str(e))) from None
    except (CellTimeoutError, DeadKernelError) as e:
        raise RenderError(f"{path}: {type(e).__name__}: {e}") from None
    except NoSuchKernel:
        raise RenderError(f"{path}: no Jupyter kernel named \"rust\": run `just kernel`") from None
    # The kernel reports its own language_info (versions differ between machines): keep what
    # the notebook was written with.
    nb.metadata = authored_metadata
    return nb, seconds


def normalize(nb: nbformat.NotebookNode) -> None:
    """Drop what depends on when the notebook ran: timestamps, counts, stream chunking."""
    count = 0
    for cell in nb.cells:
        for key in ("execution", "ExecuteTime"):
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        merged = []
        for out in cell.outputs:
            if out.output_type == "execute_result":
                out.execution_count = count
            # The kernel flushes stdout in chunks whose boundaries depend on timing.
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        cell.outputs = merged


def check_outputs(path: Path, nb: nbformat.NotebookNode) -> None:
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                raise RenderError(f"{path}: cell {index} has an error output: {out.ename}: {out.evalue}")
            text = json.dumps(out, ensure_ascii=False)
            for prefix in MACHINE_PATHS:
                if prefix in text:
                    raise RenderError(f"{path}: cell {index} prints a path of this machine ({prefix}...): "
                                      "outputs are committed, print relative paths")


def plotly_outputs(nb: nbformat.NotebookNode) -> list:
    return [out for cell in nb.cells for out in cell.get("outputs", [])
            if out.output_type in ("display_data", "execute_result") and PLOTLY_MIME in out.data]


# A small PRNG (mulberry32) replaces Math.random before plotly.js loads; it is reseeded before
# each figure, so a figure's SVG does not depend on the figures drawn before it.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<script>
let prngState = 0;
function reseed() {{ prngState = 0x2545F491; }}
Math.random = function () {{
  prngState = (prngState + 0x6D2B79F5) | 0;
  let t = prngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}};
reseed();
</script>
<script src="{plotly_js}"></script>
</head><body>
<pre id="result"></pre>
<script>
const figures = {figures};
function encode(text) {{
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {{
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }}
  return btoa(binary);
}}
(async () => {{
  const svgs = [];
  for (const fig of figures) {{
    reseed();
    const layout = fig.layout || {{}};
    svgs.push(await Plotly.toImage(
      {{data: fig.data || [], layout: layout, config: fig.config || {{}}}},
      {{format: "svg", width: layout.width || {width}, height: layout.height || {height}, imageDataOnly: true}}));
  }}
  document.getElementById("result").textContent = "SVGS " + encode(JSON.stringify(svgs)) + " END";
}})().catch(e => {{
  document.getElementById("result").textContent = "FAILED " + encode(String(e && e.stack || e)) + " END";
}});
</script>
</body></html>
"""


def render_svgs(path: Path, figures: list) -> list:
    """SVG text of each plotly figure, in order, from one headless Chromium run."""
    with tempfile.TemporaryDirectory(prefix="render-notebooks-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(PAGE.format(plotly_js=PLOTLY_JS.as_uri(), width=SVG_WIDTH, height=SVG_HEIGHT,
                                    figures=json.dumps(figures).replace("</", "<\\/")), encoding="utf-8")
        command = headless_chromium.dump_dom_command(page.as_uri(), f"{tmp}/profile", 120000,
                                                     extra=["--hide-scrollbars"])
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RenderError(f"{path}: Chromium failed to render the figures: {e}") from None
    found = re.search(r"(SVGS|FAILED) ([A-Za-z0-9+/=]*) END", run.stdout)
    if run.returncode != 0 or not found:
        raise RenderError(f"{path}: Chromium (exit status {run.returncode}) did not render the figures; "
                          f"its stderr ends with:\n{run.stderr[-2000:]}")
    payload = base64.b64decode(found.group(2)).decode("utf-8")
    if found.group(1) == "FAILED":
        raise RenderError(f"{path}: plotly.js failed in Chromium: {payload}")
    svgs = json.loads(payload)
    if len(svgs) != len(figures):
        raise RenderError(f"{path}: {len(figures)} figures but {len(svgs)} SVGs")
    return svgs


def add_static_images(path: Path, nb: nbformat.NotebookNode) -> int:
    outputs = plotly_outputs(nb)
    if not outputs:
        return 0
    svgs = render_svgs(path, [out.data[PLOTLY_MIME] for out in outputs])
    for out, svg in zip(outputs, svgs):
        out.data[SVG_MIME] = svg
        title = out.data[PLOTLY_MIME].get("layout", {}).get("title", {})
        title = title.get("text", "") if isinstance(title, dict) else str(title)
        out.data["text/plain"] = f"<plotly figure: {title}>" if title else "<plotly figure>"
    return len(outputs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to execute (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, help="write the executed notebooks here instead of in place")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    args = parser.parse_args()
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb"))
    if not PLOTLY_JS.is_file():
        print(f"error: {PLOTLY_JS} is missing: run from the venv of `just kernel`", file=sys.stderr)
        return 1
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        path = path.resolve()
        start = time.monotonic()
        print(f"executing {path.relative_to(REPO) if path.is_relative_to(REPO) else path}", flush=True)
        try:
            nb, seconds = execute(path, args.timeout)
            normalize(nb)
            check_outputs(path, nb)
            figures = add_static_images(path, nb)
        except RenderError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        target = args.out / path.name if args.out else path
        nbformat.write(nb, target)
        cells = " ".join(f"{s:.1f}" for s in seconds)
        print(f"ok: {path.name}: {time.monotonic() - start:.0f} s in all, {figures} figure(s), "
              f"seconds per code cell: {cells}; written to {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
