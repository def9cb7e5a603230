#!/usr/bin/env bash
# `just test-cluster`: a small grid (tests/data/grids/cluster_smoke.toml) submitted through a
# real Slurm must give the same results as a local run of the same grid.
#
# Uses the Slurm that answers on this machine, or starts a single-node one with
# scripts/slurm-local.sh (root, Debian: installs slurm-wlm and munge the first time) and
# stops it again at the end. What it checks:
#   - `grid submit --dry-run` lists every cell in the array and writes nothing;
#   - no sbatch on PATH, and a job sbatch rejects: exit 2 with a clear message, nothing left behind;
#   - a cell whose task fails (its shard path is blocked) is reported failed with its log;
#   - re-submitting submits exactly the failed cell; then every cell is finished, and a
#     third submit has nothing to submit;
#   - `compare` finds the cluster's shards equal to the local run's (1 thread locally, 2 CPUs
#     per task on the cluster), and the tidy and summary tables are equal row for row apart
#     from timing metrics.
# CLUSTER_TEST_DIR: where the results go (on a real cluster: a directory the nodes share).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
grid=tests/data/grids/cluster_smoke.toml
name=cluster_smoke

fail() { echo "test-cluster: FAILED: $*" >&2; exit 1; }
step() { echo "test-cluster: $*" >&2; }

started=0
if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
    scripts/slurm-local.sh start
    started=1
fi
t_slurm=$((SECONDS - t0))

t1=$SECONDS
cargo build -q -p policy-param-cli
t_build=$((SECONDS - t1))
target="${CARGO_TARGET_DIR:-target}"
bin="$(cd "$target" && pwd)/debug/policy-param"
[ -x "$bin" ] || fail "no binary at $bin"

work="$(mktemp -d "${CLUSTER_TEST_DIR:-${TMPDIR:-/tmp}}/policy-param-cluster.XXXXXX")"
cleanup() {
    local rc=$?
    if [ "$rc" -eq 0 ]; then rm -rf "$work"; else echo "test-cluster: results kept in $work" >&2; fi
    if [ "$started" = 1 ]; then scripts/slurm-local.sh stop >/dev/null; fi
}
trap cleanup EXIT
local_out="$work/local"
out="$work/cluster"
pp() { "$bin" "$@"; }

step "local run (1 thread)"
pp grid run "$grid" --out "$local_out" --threads 1 --no-progress >/dev/null 2>&1
cells="$(pp grid list "$grid" --out "$out" | awk 'NR == 1 {print $2}')"
[ "$cells" -ge 2 ] || fail "expected a grid of several cells, got '$cells'"
last=$((cells - 1))

step "dry run"
script="$(pp grid submit "$grid" --scheduler slurm --out "$out" --cpus-per-task 2 --dry-run 2>/dev/null)"
grep -qx "#SBATCH --array=0-$last" <<<"$script" || fail "dry run: expected --array=0-$last in: $script"
grep -qx "#SBATCH --cpus-per-task=2" <<<"$script" || fail "dry run: no --cpus-per-task=2"
[ ! -e "$out" ] || fail "dry run wrote $out"

step "bad input: no sbatch on PATH, a rejected job"
set +e
msg="$(PATH=/nonexistent "$bin" grid submit "$grid" --scheduler slurm --out "$out" 2>&1)"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "sbatch is not on PATH" <<<"$msg" || fail "no sbatch: exit $rc, '$msg'"
set +e
msg="$(pp grid submit "$grid" --scheduler slurm --out "$out" --partition no-such-partition 2>&1)"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "sbatch rejected the job" <<<"$msg" || fail "rejected job: exit $rc, '$msg'"
[ ! -e "$out" ] || fail "a rejected submission left $(find "$out")"

step "submit every cell, with cell 1's shard path blocked (its task must fail)"
shard="$(pp grid list "$grid" --out "$out" | awk '$1 == 1 { sub(/\[.*/, "", $3); print $3 "-" $NF ".json" }')"
mkdir -p "$out/$name/cells/$shard"
job="$(pp grid submit "$grid" --scheduler slurm --out "$out" --cpus-per-task 2)"
[[ "$job" =~ ^[0-9]+$ ]] || fail "submit printed '$job', not a job id"
set +e
status="$(pp grid status "$grid" --out "$out" --wait --poll 0.5 2>/dev/null)"; rc=$?
set -e
echo "$status" >&2
[ "$rc" = 1 ] || fail "status with a failed cell: exit $rc, expected 1"
grep -q "$cells cells: $last finished (0 diverged), 0 running, 0 queued, 1 failed, 0 missing" <<<"$status" \
    || fail "status: expected $last finished and 1 failed"
log="$out/$name/logs/${job}_1.out"
grep -qF "failed   #1 " <<<"$status" && grep -qF "log $log" <<<"$status" || fail "status does not name cell 1's log $log"
grep -q "Is a directory" "$log" || fail "the log $log does not say why the cell failed"

step "re-submit: only the failed cell"
rmdir "$out/$name/cells/$shard"
script="$(pp grid submit "$grid" --scheduler slurm --out "$out" --dry-run 2>/dev/null)"
grep -qx "#SBATCH --array=1" <<<"$script" || fail "re-submit: expected --array=1"
job2="$(pp grid submit "$grid" --scheduler slurm --out "$out")"
[[ "$job2" =~ ^[0-9]+$ ]] && [ "$job2" != "$job" ] || fail "second submit printed '$job2'"
pp grid status "$grid" --out "$out" --wait --poll 0.5 >&2 || fail "not every cell finished"
before="$(find "$out" | sort)"
submitted="$(pp grid submit "$grid" --scheduler slurm --out "$out" 2>&1 >/dev/null)"
grep -q "nothing to submit" <<<"$submitted" || fail "third submit: '$submitted'"
[ "$before" = "$(find "$out" | sort)" ] || fail "a submit with nothing to submit wrote files"

step "tables: cluster vs local"
pp grid collect "$grid" --out "$out" >/dev/null
pp compare "$local_out" "$out" >&2 || fail "compare: the cluster's results differ from the local run's"
grep -q '"threads": 2' "$out/$name/cells/"*.json || fail "the cluster's cells did not run on 2 threads"
python3 - "$local_out" "$out" "$name" <<'PY' || fail "the tables differ"
import csv, sys
local, cluster, name = sys.argv[1:]
def rows(path):
    with open(path, newline="") as f:
        r = list(csv.DictReader(f))
    timing = lambda m: m.endswith("_seconds") or m.endswith("_per_second")
    return [row for row in r if not timing(row["metric"])]
for table in (f"{name}.csv", f"{name}_summary.csv"):
    a, b = rows(f"{local}/{table}"), rows(f"{cluster}/{table}")
    if a != b or not a:
        sys.exit(f"{table}: {len(a)} rows locally, {len(b)} on the cluster, or rows differ")
    print(f"test-cluster: {table}: {len(a)} rows equal (timing metrics aside)", file=sys.stderr)
PY
step "passed in $((SECONDS - t0)) s: Slurm ready in ${t_slurm} s, build ${t_build} s, test $((SECONDS - t0 - t_slurm - t_build)) s"
