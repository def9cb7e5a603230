#!/usr/bin/env bash
# The Rust Jupyter kernel (evcxr_jupyter) as `just kernel` registers it. With EVCXR_BUILD_ROOT
# set (the justfile's notebook recipes set it to target/evcxr/build), each
# notebook compiles in a build directory of its own that outlives the kernel,
# $EVCXR_BUILD_ROOT/<notebook>, so a restarted kernel finds its dependencies already built
# (cargo's own fingerprints) instead of rebuilding them in a fresh temporary directory; the
# .cargo/config.toml above them compiles the dependencies optimized and without debug
# assertions while the cells themselves compile at `:opt 0` (init.evcxr). Jupyter names the
# notebook in JPY_SESSION_NAME (render_notebooks.py sets it too). One notebook open twice
# shares its directory: run it in one kernel at a time. Without EVCXR_BUILD_ROOT the kernel
# runs exactly as evcxr_jupyter would.
set -euo pipefail
if [[ -n "${EVCXR_BUILD_ROOT:-}" ]]; then
    name="$(basename "${JPY_SESSION_NAME:-scratch-$$}" .ipynb)"
    export EVCXR_TMPDIR="$EVCXR_BUILD_ROOT/$name"
    mkdir -p "$EVCXR_TMPDIR"
fi
exec "${EVCXR_JUPYTER:-evcxr_jupyter}" "$@"
