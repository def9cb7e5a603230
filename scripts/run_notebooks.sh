#!/usr/bin/env bash
# Execute notebooks headless with the Rust (evcxr) kernel; exit non-zero if any cell errors.
# Executed copies go to a temporary directory: the committed notebooks stay as they are.
set -euo pipefail
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for nb in "$@"; do
    echo "executing $nb"
    start=$SECONDS
    jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.kernel_name=rust \
        --ExecutePreprocessor.timeout=1800 \
        --output-dir "$out" "$nb"
    echo "ok: $nb ($((SECONDS - start)) s)"
done
