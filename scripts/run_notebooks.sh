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
    trap 'rm -rf "$out"' EXIT
fi
for nb in "$@"; do
    echo "executing $nb"
    start=$SECONDS
    jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.kernel_name=rust \
        --ExecutePreprocessor.timeout=1800 \
        --output-dir "$out" "$nb"
    echo "ok: $nb ($((SECONDS - start)) s)"
done
