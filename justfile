# policy-param: `just reproduce` (main job) and `just test` (everything CI checks).
# Run `just --list` for the rest.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv_gym := ".venv-gym"
venv_jupyter := ".venv-jupyter"
venv_peers := ".venv-peers"

# List the recipes.
default:
    @just --list

# Main job: run every experiment grid (experiments/*.toml) and write tables, figures and
# results/manifest.json. Finished cells are skipped: rerun after an interruption to finish.
reproduce *args:
    cargo build --release -p policy-param-cli
    cargo run -q --release -p policy-param-cli -- grid run experiments/*.toml --out results {{args}}

# The paper-scale grids (experiments/full/*.toml) into results/full/ (time: see README).
reproduce-full *args:
    cargo build --release -p policy-param-cli
    cargo run -q --release -p policy-param-cli -- grid run experiments/full/*.toml --out results/full {{args}}

# Compare results/ with another result directory cell by cell (exit 1 on a difference).
compare other *args:
    cargo run -q --release -p policy-param-cli -- compare results {{other}} {{args}}

# After `just reproduce`: compare DIR (default results) with its tables as committed at HEAD
# (timing skipped); per grid identical, within tolerance or different; exit 1 on a difference.
check-reproduction dir="results" *args:
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT; \
    git archive HEAD "{{dir}}" | tar -x -C "$tmp"; \
    cargo run -q --release -p policy-param-cli -- compare "$tmp/{{dir}}" "{{dir}}" {{args}}

# Everything CI checks: Rust tests, Gymnasium agreement (committed and fresh traces), the
# committed figures drawn offline in Chromium, notebooks headless.
test: test-rust check-traces test-gymnasium test-figures test-notebooks

# Unit, integration and command-line tests.
test-rust:
    cargo test --workspace

# A small grid through a real single-node Slurm (scripts/slurm-local.sh installs and starts
# it as root the first time, Debian's slurm-wlm and munge): its tables must equal a local run's.
test-cluster:
    scripts/test-cluster.sh

# Open every results page in headless Chromium with the network off: every figure must draw
# (Debian's `chromium`; .ci/run installs it).
test-figures:
    python3 scripts/check_figures.py results/*.html results/full/*.html

# Replay the committed Gymnasium traces through our environments.
check-traces:
    cargo run -q -p policy-param-cli -- env check-trace tests/data/traces/*.csv

# Write fresh traces with Gymnasium from PyPI and replay them (catches drift in either side).
test-gymnasium: gym-venv
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT; \
    {{venv_gym}}/bin/python scripts/gym_traces.py "$tmp"; \
    cargo run -q -p policy-param-cli -- env check-trace "$tmp"/*.csv

# Regenerate the committed traces under tests/data/traces/.
traces: gym-venv
    {{venv_gym}}/bin/python scripts/gym_traces.py tests/data/traces

# Python venv with Gymnasium, pinned (reference traces).
gym-venv:
    [ -x {{venv_gym}}/bin/python ] || python3 -m venv {{venv_gym}}
    {{venv_gym}}/bin/pip install -q --disable-pip-version-check -r scripts/requirements-gym.txt

# evcxr_jupyter version that the notebooks are rendered and tested with.
evcxr_version := "0.22.0"
# One evcxr configuration for Lab, tests and renders: its init.evcxr turns on the compilation
# cache (kept by evcxr in ~/.cache/evcxr), so Lab reuses what tests and renders compiled.
evcxr_config := justfile_directory() / "target" / "evcxr"

# The kernel that `evcxr_jupyter --install` registers, started through scripts/evcxr_kernel.sh
# (a build directory per notebook that outlives the kernel, under evcxr_build when set).
register_wrapper := "import json, sys; from jupyter_client.kernelspec import KernelSpecManager as M; from pathlib import Path; p = Path(M().get_kernel_spec('rust').resource_dir) / 'kernel.json'; s = json.loads(p.read_text()); s['argv'][0] = sys.argv[1]; s['env'] = {**s.get('env', {}), 'EVCXR_JUPYTER': sys.argv[2]}; p.write_text(json.dumps(s, indent=2))"
# Per-notebook build directories (see scripts/evcxr_kernel.sh); their parent holds the cargo
# configuration that builds the library optimized for the notebooks (the workspace excludes them).
evcxr_build := evcxr_config / "build"

# Also writes the evcxr configuration: init.evcxr turns on the compilation cache, compiles
# cells unoptimized (they are small; the library does the work) and runs cargo offline (no
# index lookup per `:dep`: about 2 s off a notebook's first cell), after
# scripts/fetch_notebook_deps.py has downloaded every crate the notebooks' `:dep` lines need;
# .cargo/config.toml above the build directories compiles every dependency, the library
# included, at opt-level 2 without debug assertions.
# Install the Rust Jupyter kernel (evcxr_jupyter, pinned) and Jupyter in a local venv; register the kernel.
kernel:
    cargo install --list | grep -qx "evcxr_jupyter v{{evcxr_version}}:" || cargo install evcxr_jupyter --version {{evcxr_version}} --locked
    [ -x {{venv_jupyter}}/bin/python ] || python3 -m venv {{venv_jupyter}}
    {{venv_jupyter}}/bin/pip install -q --disable-pip-version-check -r scripts/requirements-notebooks.txt
    PATH="$PWD/{{venv_jupyter}}/bin:$PATH" evcxr_jupyter --install
    {{venv_jupyter}}/bin/python -c "{{register_wrapper}}" "$PWD/scripts/evcxr_kernel.sh" "$(command -v evcxr_jupyter)"
    mkdir -p "{{evcxr_config}}" "{{evcxr_build}}/.cargo"
    {{venv_jupyter}}/bin/python scripts/fetch_notebook_deps.py
    printf ':cache 4000\n:opt 0\n:offline 1\n' > "{{evcxr_config}}/init.evcxr"
    printf '[profile.dev.package."*"]\nopt-level = 2\ndebug-assertions = false\noverflow-checks = false\n' > "{{evcxr_build}}/.cargo/config.toml"

# Open the notebooks in Jupyter Lab with the Rust kernel.
notebooks: kernel
    EVCXR_CONFIG_DIR="{{evcxr_config}}" EVCXR_BUILD_ROOT="{{evcxr_build}}" {{venv_jupyter}}/bin/jupyter lab notebooks

# Executed copies go to a temporary directory: the committed notebooks stay as they are.
# Needs Chromium (`apt-get install chromium`) for the figures' static images.
# Execute every notebook headless; an erroring cell fails.
test-notebooks: kernel
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT; \
    EVCXR_CONFIG_DIR="{{evcxr_config}}" EVCXR_BUILD_ROOT="{{evcxr_build}}" {{venv_jupyter}}/bin/python scripts/render_notebooks.py --out "$tmp"

# Seconds per notebook cell as a reader waits for them (kernel timestamps), each notebook run
# twice: the second run, with evcxr's cache warm, is the figure to read. Options:
# scripts/notebook_latency.py --help (--runs, --json).
notebook-latency *args: kernel
    EVCXR_CONFIG_DIR="{{evcxr_config}}" EVCXR_BUILD_ROOT="{{evcxr_build}}" {{venv_jupyter}}/bin/python scripts/notebook_latency.py {{args}}

# Deterministic: a rerun on the same machine changes no byte (see scripts/render_notebooks.py).
# Execute the notebooks (default: all) and save them with their outputs and an SVG of each figure.
render-notebooks *notebooks: kernel
    EVCXR_CONFIG_DIR="{{evcxr_config}}" EVCXR_BUILD_ROOT="{{evcxr_build}}" {{venv_jupyter}}/bin/python scripts/render_notebooks.py {{notebooks}}

# Criterion benchmarks (release).
bench:
    cargo bench

# Needs a quiet machine: about 45 minutes; the first time also installs torch and jax (several
# GB). Options: scripts/bench_peers.py --help (--steps, --repeats, --algos, --threads). Records
# every measurement with the CPU in results/bench_peers.json (one run per CPU).
# Side by side with Stable-Baselines3 and sbx: SAC, DDPG and TD3 on Pendulum-v1, steps/s, 1 and 2 threads.
bench-peers *args: peers-venv
    cargo build --release --example peer_speed
    {{venv_peers}}/bin/python scripts/bench_peers.py --json results/bench_peers.json {{args}}

# Where an update's time goes, on one core: our GEMM at the exact shapes of a SAC and a DDPG
# update against OpenBLAS (numpy) and oneDNN/MKL (torch), and the share of a training step
# outside matrix products; recorded per CPU in results/bench_gemm.json (about a minute).
bench-gemm *args: peers-venv
    cargo build --release --example gemm_shapes --features gemm-timing
    {{venv_peers}}/bin/python scripts/bench_gemm.py --json results/bench_gemm.json {{args}}

# The chapter's `maximize` against scipy's L-BFGS-B on a torch q, one core, same network,
# states, starts and tolerances (scripts/bench_maximize.py): into results/bench_maximize.json.
bench-maximize *args: peers-venv
    cargo build --release --example maximize_race
    {{venv_peers}}/bin/python scripts/bench_maximize.py --json results/bench_maximize.json {{args}}

# Python venv with Stable-Baselines3, sbx and Gymnasium, pinned (peers for bench-peers).
peers-venv:
    [ -x {{venv_peers}}/bin/python ] || python3 -m venv {{venv_peers}}
    {{venv_peers}}/bin/pip install -q --disable-pip-version-check -r scripts/requirements-peers.txt

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
