#!/usr/bin/env bash
# A single-node Slurm on this machine, from Debian's packages (slurm-wlm 22.05, munge), for
# `just test-cluster`: slurmctld and slurmd on localhost, one partition `debug` holding this
# node with all its CPUs, no accounting database (sacct is unavailable; `grid status` then
# reads failures from the markers the array tasks leave).
#
#   scripts/slurm-local.sh start    install if needed, configure, start; wait until the node is idle
#   scripts/slurm-local.sh stop     stop slurmctld, slurmd and munged (those this script started)
#   scripts/slurm-local.sh status   print whether it runs
#
# Needs root and apt (Debian 12). It writes /etc/slurm/slurm.conf only when there is none or
# when the one there was written by this script: it never touches a real cluster's config.
set -euo pipefail

action="${1:-start}"
conf=/etc/slurm/slurm.conf
tag="# written by policy-param scripts/slurm-local.sh"
state=/run/policy-param-slurm      # pid files of the daemons this script started
logs=/var/log/slurm

die() { echo "slurm-local: $*" >&2; exit 1; }
say() { echo "slurm-local: $*" >&2; }

running() { command -v scontrol >/dev/null && timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_pid_of() { [ -s "$state/$1.pid" ] && cat "$state/$1.pid"; }

stop_one() { # name pidfile...: stop a daemon this script started, by its recorded pid
    local name="$1" pid
    pid="$(start_pid_of "$name" || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        say "stopped $name (pid $pid)"
    fi
    rm -f "$state/$name.pid"
}

case "$action" in
    status)
        if running; then sinfo; exit 0; else echo "slurm-local: not running"; exit 1; fi ;;
    stop)
        [ "$(id -u)" = 0 ] || die "run as root"
        stop_one slurmd
        stop_one slurmctld
        stop_one munged
        exit 0 ;;
    start) ;;
    *) die "usage: $0 [start|stop|status]" ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root: it installs packages and starts slurmctld, slurmd and munged"
if running && grep -qF "$tag" "$conf" 2>/dev/null; then
    say "already running"; sinfo >&2; exit 0
fi

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "no apt-get: install slurm-wlm and munge with this system's package manager"
    say "installing slurm-wlm and munge from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
say "$(slurmctld -V)"

# 2. Config.
if [ -e "$conf" ] && ! grep -qF "$tag" "$conf"; then
    die "$conf exists and was not written by this script: not touching a real cluster's configuration"
fi
host="$(hostname -s)"
cpus="$(nproc)"
memory_mb="$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$logs" "$state"
cat >"$conf" <<EOF
$tag
# A single node, for tests: slurmctld and slurmd on this machine, no accounting database.
ClusterName=policy-param-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
# No cgroups: this may run in a container.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
# Start the next array task as soon as one ends (the default waits about 3 s per task).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

# 3. Munge: a key, then the daemon as user munge.
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$state/munged.pid"
    munge -n | unmunge >/dev/null || die "munged does not answer"
fi

# 4. The daemons (they write their pid files into $state).
if ! running; then
    pgrep -x slurmctld >/dev/null && die "a slurmctld is running but does not answer: see $logs/slurmctld.log"
    slurmctld
fi
for _ in $(seq 100); do running && break; sleep 0.2; done
running || die "slurmctld did not come up: see $logs/slurmctld.log"
if ! scontrol show node "$host" 2>/dev/null | grep -q 'State=IDLE\|State=MIXED\|State=ALLOCATED'; then
    pgrep -x slurmd >/dev/null || slurmd
fi
for _ in $(seq 150); do
    node_state="$(sinfo -h -n "$host" -o %T 2>/dev/null || true)"
    case "$node_state" in
        idle | mixed | allocated) break ;;
        down* | drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
done
case "$node_state" in
    idle | mixed | allocated) ;;
    *) die "node $host is '$node_state', not idle: see $logs/slurmd.log and $logs/slurmctld.log" ;;
esac
say "running: partition debug, node $host with $cpus CPUs"
sinfo >&2
