#!/usr/bin/env bash
# dptrain under Slurm on this one machine: installs Debian's Slurm and munge (as root), writes a
# one-node cluster's slurm.conf under $WORK, starts munged, slurmctld and slurmd, runs the
# checks, and stops the daemons it started (also on failure). Checks (CHECKS, default all):
#   srun     srun -n 2 --mpi=pmix trains bitwise as one process; srun -n 2 without an MPI
#            plugin is refused (exit 2); --mpi=pmi2 cannot work with Debian's Open MPI
#   preempt  scancel --signal=USR1 and plain scancel (SIGTERM) to a 2-rank srun job: exit 75,
#            one "interrupted" line, resumed with 1 rank bitwise as an uninterrupted run
#   sbatch   the docs/distributed.md batch script on 1 node: #SBATCH --signal=USR1@115 stops
#            it (exit 75), the script requeues itself and the requeued job resumes to the end
#            (~45 s of one core, ~3 min in all: slurmctld sends the warning from a periodic
#            check, and starts a requeued job 2 minutes later; the requeued job's time limit
#            is raised to 10 min so that it is not warned again)
# Usage: perf/slurm_local.sh   (DPTRAIN=path/to/dptrain WORK=/tmp/dptrain-slurm CHECKS="srun")
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(realpath "${DPTRAIN:-$root/build/dptrain}")
work=${WORK:-/tmp/dptrain-slurm}
checks=${CHECKS:-srun preempt sbatch}
nice=${NICE:-10}

say() { printf '== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root (installs packages, runs munged and the Slurm daemons)"
[ -x "$bin" ] || fail "$bin: build dptrain first (cmake --build build)"

# --- packages ---------------------------------------------------------------------------
if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null ||
    ! command -v srun > /dev/null || ! command -v munged > /dev/null; then
    say "installing slurmd slurmctld slurm-client munge (apt-get)"
    pkgs=(slurmd slurmctld slurm-client munge)
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends "${pkgs[@]}"; }
fi

# --- configuration: one node "localhost" with this machine's CPUs, no cgroups ----------------
# Daemons of an earlier run of this script that was killed are stopped first.
for f in "$work"/slurmd.pid "$work"/slurmctld.pid; do
    if [ -f "$f" ] && kill -0 "$(cat "$f")" 2> /dev/null; then
        echo "stopping $(basename "$f" .pid) (pid $(cat "$f")) of an earlier run"
        kill "$(cat "$f")"
        sleep 2
    fi
done
rm -rf "$work"/state "$work"/spool "$work"/log "$work"/runs
mkdir -p "$work"/etc "$work"/state "$work"/spool "$work"/log "$work"/runs
cpus=$(nproc)
export SLURM_CONF=$work/etc/slurm.conf
cat > "$SLURM_CONF" << EOF
# Written by perf/slurm_local.sh: a one-node cluster for testing dptrain under srun.
ClusterName=dptrain
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=10
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons ------------------------------------------------------------------------------
started=()
stop_daemons() {
    local rc=$?
    local pids=() f p
    for f in "$work"/slurmd.pid "$work"/slurmctld.pid; do
        [ -f "$f" ] && pids+=("$(cat "$f")")
    done
    if [[ " ${started[*]} " == *" munged "* ]] && [ -f /run/munge/munged.pid ]; then
        pids+=("$(cat /run/munge/munged.pid)")
    fi
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${pids[@]}"; do # until gone or a zombie (pid 1 reaps those)
        for _ in $(seq 100); do
            { [ -e /proc/"$p" ] && ! grep -q ') Z ' /proc/"$p"/stat 2> /dev/null; } || break
            sleep 0.1
        done
    done
    echo "stopped the daemons this script started: ${started[*]:-none}"
    exit $rc
}
trap stop_daemons EXIT

if ! pgrep -x munged > /dev/null; then
    install -d -o munge -g munge -m 0755 /run/munge
    [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
    runuser -u munge -- /usr/sbin/munged
    started+=(munged)
fi
munge -n | unmunge > /dev/null || fail "munge does not work (see /var/log/munge/munged.log)"
slurmctld -f "$SLURM_CONF"
# The tasks inherit slurmd's niceness: keep them behind interactive work.
nice -n "$nice" slurmd -f "$SLURM_CONF" -N localhost
started+=(slurmctld slurmd)
for _ in $(seq 60); do
    [ "$(sinfo -h -n localhost -o %t 2> /dev/null)" = idle ] && break
    sleep 0.5
done
[ "$(sinfo -h -n localhost -o %t)" = idle ] || fail "node not idle: $(sinfo -h -o '%t %E')"
say "$(srun --version), MPI plugins: $(srun --mpi=list 2>&1 | grep -E '^\s' | xargs | tr ' ' ,);" \
    "$(mpirun --version | head -1)"

# --- helpers ------------------------------------------------------------------------------
runs=$work/runs
run() { nice -n "$nice" "$bin" "$@"; }

# Two run directories hold the same training: every checkpoint.dpt section byte for byte but
# config, argv and epoch_row (thread/rank counts, timings), and metrics.csv but columns 9-12
# (epoch_seconds, samples_per_second, threads, ranks).
same_run() {
    python3 - "$1" "$2" << 'EOF' || fail "$1 and $2 differ"
import struct, sys
def sections(path):
    b = open(path, "rb").read()
    assert b[:8] == b"DPTCKPT\0", path
    n, p, out = struct.unpack_from("<I", b, 12)[0], 16, {}
    for _ in range(n):
        length = struct.unpack_from("<H", b, p)[0]
        name = b[p + 2 : p + 2 + length].decode()
        off, size = struct.unpack_from("<QQ", b, p + 2 + length)
        out[name], p = b[off : off + size], p + 18 + length
    return out
def metrics(d):
    return [l.split(",")[:8] + l.split(",")[12:] for l in open(d + "/metrics.csv")]
a, b = (sections(d + "/checkpoint.dpt") for d in sys.argv[1:3])
skip = {"config", "argv", "epoch_row"}
diff = [k for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]
if diff or metrics(sys.argv[1]) != metrics(sys.argv[2]):
    sys.exit("differ in sections %s or metrics.csv" % diff)
print("   same bits: %s (%d bytes of params), %d metrics rows"
      % (", ".join(k for k in sorted(a) if k not in skip), len(a["params"]),
         len(metrics(sys.argv[1])) - 1))
EOF
}

# Waits up to $2 s for file $1 while process $3 runs.
wait_file() {
    for _ in $(seq $(($2 * 10))); do
        [ -f "$1" ] && return 0
        kill -0 "$3" 2> /dev/null || fail "job ended before $1 appeared"
        sleep 0.1
    done
    fail "no $1 after $2 s"
}

# shellcheck disable=SC2054 # the commas are inside flag values
small=(--data synthetic:4000,1,8,8,4 --model dense:32,relu,dense:4 --batch-size 16
    --micro-batch 8 --threads 1 --quiet)

# --- (a) srun -n 2 --mpi=pmix equals one process ------------------------------------------
if [[ " $checks " == *" srun "* ]]; then
    say "srun: 2 ranks (--mpi=pmix) vs one process"
    run train "${small[@]}" --epochs 2 --out "$runs"/one
    srun -n 2 --mpi=pmix --cpu-bind=cores "$bin" train "${small[@]}" --epochs 2 \
        --out "$runs"/srun2
    grep -qx 'ranks = 2' "$runs"/srun2/config.txt || fail "config.txt: $(grep ^ranks \
        "$runs"/srun2/config.txt)"
    ok "exit 0, config.txt: ranks = 2, $(grep '^mpi =' "$runs"/srun2/config.txt)"
    same_run "$runs"/one "$runs"/srun2

    say "srun: 2 tasks without an MPI plugin (Slurm's default --mpi=none) are refused"
    set +e
    srun -n 2 "$bin" train "${small[@]}" --epochs 2 --out "$runs"/none > "$runs"/none.log 2>&1
    rc=$?
    set -e
    [ $rc = 2 ] && grep -q 'without an MPI plugin' "$runs"/none.log && [ ! -e "$runs"/none ] ||
        fail "srun --mpi=none: exit $rc: $(cat "$runs"/none.log)"
    ok "exit 2, no run directory: $(grep -m1 'error:' "$runs"/none.log)"

    say "srun: --mpi=pmi2 (Debian's Open MPI has no PMI-1/2 support, only PMIx)"
    set +e
    srun -n 2 --mpi=pmi2 "$bin" train "${small[@]}" --epochs 2 --out "$runs"/pmi2 \
        > "$runs"/pmi2.log 2>&1
    rc=$?
    set -e
    [ $rc != 0 ] || fail "--mpi=pmi2 worked: update docs/distributed.md"
    ok "exit $rc as expected, Open MPI: $(tr '\n' ' ' < "$runs"/pmi2.log |
        grep -o 'OMPI was not built with [^.]*' | head -1)"
fi

# --- (b) pre-emption signals through Slurm ------------------------------------------------
if [[ " $checks " == *" preempt "* ]]; then
    long=("${small[@]}" --epochs 20 --checkpoint-every-steps 4)
    say "preempt: the uninterrupted reference (one process)"
    run train "${long[@]}" --out "$runs"/ref
    for how in USR1 TERM; do
        say "preempt: 2 ranks under srun, $( [ $how = USR1 ] && echo 'scancel --signal=USR1' ||
            echo 'plain scancel (SIGTERM)') after the first checkpoint"
        dir=$runs/preempt-$how
        srun -J dpt-$how -n 2 --mpi=pmix "$bin" train "${long[@]}" --out "$dir" \
            > "$dir".log 2>&1 &
        pid=$!
        wait_file "$dir"/checkpoint.dpt 30 $pid
        job=$(squeue -h -n dpt-$how -o %i)
        if [ $how = USR1 ]; then scancel --signal=USR1 "$job"; else scancel "$job"; fi
        set +e
        wait $pid
        rc=$?
        set -e
        [ $rc = 75 ] || fail "srun exit $rc: $(cat "$dir".log)"
        n=$(grep -c "interrupted (SIG$how) at epoch" "$dir".log || true)
        [ "$n" = 1 ] || fail "$n 'interrupted' lines: $(cat "$dir".log)"
        grep -q 'tasks 0-1: Exited with exit code 75' "$dir".log || fail "$(cat "$dir".log)"
        ok "job $job: srun exit 75, both tasks 75: $(grep -o 'interrupted.*step [0-9]*' \
            "$dir".log)"
        if [ $how = USR1 ]; then
            srun -n 1 --mpi=pmix "$bin" train --resume "$dir" --threads 1 --quiet
            ok "resumed with srun -n 1 --mpi=pmix: exit 0"
        else
            run train --resume "$dir" --threads 2 --quiet
            ok "resumed as one process of 2 threads: exit 0"
        fi
        same_run "$runs"/ref "$dir"
    done
fi

# --- (c) the batch script of docs/distributed.md --------------------------------------------
if [[ " $checks " == *" sbatch "* ]]; then
    say "sbatch: docs/distributed.md's script on 1 node x 1 task, --time=2 --signal=USR1@115"
    dir=$runs/batch
    cat > "$runs"/job.sh << EOF
#!/bin/bash
#SBATCH --nodes=1 --ntasks-per-node=1 --cpus-per-task=1
#SBATCH --time=2 --signal=USR1@115   # SIGUSR1 to every task 115 s before the end
#SBATCH --requeue --open-mode=append -o $runs/job.out
export OMP_PROC_BIND=close
dir=$dir
echo "start \$(date +%s) restart \${SLURM_RESTART_COUNT:-0}"
if [ -f \$dir/checkpoint.dpt ]; then args=(--resume \$dir); else args=(--out \$dir); fi
srun --mpi=pmix --cpu-bind=cores $bin train --threads \$SLURM_CPUS_PER_TASK \\
    --data synthetic:20000,1,32,32,4 --model dense:512,relu,dense:512,relu,dense:4 \\
    --batch-size 64 --micro-batch 16 --epochs 32 --quiet "\${args[@]}" &
wait \$!                               # srun's exit status (a bare 'wait' returns 0)
rc=\$?
echo "srun exit \$rc at \$(date +%s)"
if [ \$rc = 75 ]; then scontrol requeue \$SLURM_JOB_ID; fi
exit \$rc
EOF
    job=$(sbatch --parsable "$runs"/job.sh)
    t0=$(date +%s)
    # Done when the run directory has its 32 epochs and the job has left the queue.
    bumped=
    while squeue -h -j "$job" 2> /dev/null | grep -q .; do
        # The requeued job would get the warning again after ~5-35 s: give it 10 minutes.
        if [ -z "$bumped" ] && grep -q 'srun exit 75' "$runs"/job.out 2> /dev/null; then
            scontrol update JobId="$job" TimeLimit=10 && bumped=1
        fi
        [ $(($(date +%s) - t0)) -lt 600 ] || { scancel "$job"; fail "job $job still queued"; }
        sleep 2
    done
    cat "$runs"/job.out | sed 's/^/   | /'
    grep -q 'interrupted (SIGUSR1) at epoch' "$runs"/job.out ||
        fail "no SIGUSR1 before the training ended (slurmctld checks time limits every ~30 s)"
    grep -q 'srun exit 75' "$runs"/job.out || fail "first srun did not exit 75"
    grep -q 'restart 1' "$runs"/job.out || fail "the job was not requeued"
    rows=$(($(wc -l < "$dir"/metrics.csv) - 1))
    [ $rows = 32 ] || fail "$rows epochs in metrics.csv"
    ok "job $job: SIGUSR1 from --signal, srun exit 75, requeued, resumed to epoch 32 (exit 0)" \
        "in $(($(date +%s) - t0)) s"
fi

say "all checks passed"
