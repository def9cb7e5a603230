#!/usr/bin/env bash
# Execute notebooks headless with the Rust (evcxr) kernel; exit non-zero if any cell errors.
# Executed copies go to $NOTEBOOK_OUT if set (to read their outputs), otherwise to a
# temporary directory: the committed notebooks stay as they are.
set -euo pipefail
if [ -n "${NOTEBOOK_OUT:-}" ]; then
    out="$NOTEBOOK_OUT"
    mkdir -p "$out"
else
    out="$(mktemp -d)"
    tmp_out="$out"
fi
# evcxr compiles each notebook's dependencies (this crate, plotly, ...) in a fresh session;
# its built-in cache keeps the compiled crates between notebooks and runs.
config="$(mktemp -d)"
trap 'rm -rf "$config" ${tmp_out:-}' EXIT
echo ":cache ${EVCXR_CACHE_MIB:-4000}" > "$config/init.evcxr"
export EVCXR_CONFIG_DIR="$config"
for nb in "$@"; do
    echo "executing $nb"
    start=$SECONDS
    jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.kernel_name=rust \
        --ExecutePreprocessor.timeout=1800 \
        --output-dir "$out" "$nb"
    echo "ok: $nb ($((SECONDS - start)) s)"
done
