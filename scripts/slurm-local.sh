#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for trying hydra/launcher=slurm and for CI.
#
#   scripts/slurm-local.sh start    # install what is missing (root + apt), start, wait for srun
#   scripts/slurm-local.sh status   # sinfo; exit 1 when the cluster is not running
#   scripts/slurm-local.sh stop     # cancel its jobs, stop exactly the daemons it started
#   eval "$(scripts/slurm-local.sh env)"   # SLURM_CONF for sbatch/srun/submitit in this shell
#
# Everything lives in one workdir ($SHALLOWNET_SLURM_DIR, default outputs/slurm of the repo):
# slurm.conf, slurmdbd.conf, state, spool, logs, the accounting database and the pid files of
# the daemons this script started. Daemons and clients find the conf through SLURM_CONF, so
# nothing in /etc/slurm is written. munged serves the whole machine: one that was running
# before is used and left alone; one this script started is stopped by `stop`.
#
# Accounting is on (slurmdbd + a private MariaDB in the workdir), as on a real cluster:
# submitit learns that a job ended only from `sacct`. Without it a job that is cancelled or
# killed before it writes its result leaves the launching `shallownet-train -m` waiting
# forever, and every poll prints "Bypassing sacct error". SHALLOWNET_SLURM_ACCOUNTING=0 turns
# it off (no MariaDB, 2 daemons fewer) for trying plain sbatch/srun.
#
# Ports: $SHALLOWNET_SLURM_PORT (slurmctld, default 6817), +1 slurmd, +2 slurmdbd, +3 MariaDB,
# all on 127.0.0.1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORKDIR=${SHALLOWNET_SLURM_DIR:-$REPO/outputs/slurm}
CTLD_PORT=${SHALLOWNET_SLURM_PORT:-6817}
ACCOUNTING=${SHALLOWNET_SLURM_ACCOUNTING:-1}
START_TIMEOUT=${SHALLOWNET_SLURM_START_TIMEOUT:-60}   # seconds for `srun hostname` to answer
KILL_WAIT=30          # SLURM's default: seconds between a job's SIGTERM and its SIGKILL
MUNGE_PIDFILE=/run/munge/munged.pid                   # where Debian's munged writes its pid
PACKAGES=(slurmctld slurmd slurm-client munge)        # Debian 12: SLURM 22.05, MUNGE 0.5.15
ACCT_PACKAGES=(slurmdbd mariadb-server)               # MariaDB 10.11
export PATH=$PATH:/usr/sbin:/sbin                     # the daemons live there; sudo may drop it

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: $*" >&2; exit 1; }

setup_paths() {  # absolute paths: the daemons chdir, and the conf must not depend on cwd
    mkdir -p "$WORKDIR"
    WORKDIR=$(cd "$WORKDIR" && pwd)
    CONF=$WORKDIR/slurm.conf
    DBD_CONF=$WORKDIR/slurmdbd.conf   # slurmdbd reads the slurmdbd.conf beside $SLURM_CONF
    DB_DIR=$WORKDIR/mariadb
    SLURMD_PORT=$((CTLD_PORT + 1))
    DBD_PORT=$((CTLD_PORT + 2))
    DB_PORT=$((CTLD_PORT + 3))
    export SLURM_CONF=$CONF   # every sinfo/srun/scancel below talks to this cluster
}

# --------------------------------------------------------------------------- pid files
# A pid file counts only while its process is alive *and* is the named program: after a
# reboot or a crash the pid may belong to something else, which must never be killed.
running() {  # running PID: alive and not a zombie (a daemon's parent is init, which may
    # reap it seconds later: until then kill -0 still succeeds and /proc still names it)
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

alive() {  # alive PIDFILE PROGRAM -> prints the pid when that program runs under it
    local pidfile=$1 prog=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] && running "$pid" || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$prog" ]] || return 1
    echo "$pid"
}

drop_stale() {  # drop_stale PIDFILE PROGRAM: forget a pid file whose process is gone
    alive "$1" "$2" >/dev/null || rm -f "$1"
}

stop_pid() {  # stop_pid PID NAME: SIGTERM, up to 20 s to exit, then SIGKILL
    local pid=$1 name=$2 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 200; i++)); do
        running "$pid" || { say "stopped $name ($pid)"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    say "killed $name ($pid): it ignored SIGTERM for 20 s"
}

wait_until() {  # wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds
    local limit=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what did not answer within ${limit}s"
        sleep 0.5
    done
}

# --------------------------------------------------------------------------- install
wanted_packages() {
    echo "${PACKAGES[@]}"
    [[ $ACCOUNTING == 1 ]] && echo "${ACCT_PACKAGES[@]}"
    return 0
}

missing_programs() {
    local progs=(slurmctld slurmd sinfo srun sbatch squeue scancel sacct munged munge unmunge) prog
    [[ $ACCOUNTING == 1 ]] && progs+=(slurmdbd sacctmgr mariadbd mariadb-install-db mariadb-admin)
    for prog in "${progs[@]}"; do
        command -v "$prog" >/dev/null || echo "$prog"
    done
}

install_packages() {
    local missing packages
    missing=$(missing_programs | tr '\n' ' ')
    [[ -z $missing ]] && return 0
    packages=$(wanted_packages | tr '\n' ' ')
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "no SLURM here (missing: ${missing% }); install it as root: apt-get install -y ${packages% }"
    fi
    say "installing ${packages% } (missing: ${missing% })"
    # Debian's postinst starts munged and MariaDB as system services unless policy-rc.d says
    # no (containers usually have one that does): those would be daemons nobody stops.
    local policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# scripts/slurm-local.sh: no service starts during its apt-get\nexit 101\n' >$policy
        chmod +x $policy
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT   # also when apt-get fails below
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
    # shellcheck disable=SC2086  # one argument per package
    if ! "${apt[@]}" $packages >"$WORKDIR/apt.log" 2>&1; then
        apt-get update -qq >>"$WORKDIR/apt.log" 2>&1 || true   # a fresh machine has no lists yet
        "${apt[@]}" $packages >>"$WORKDIR/apt.log" 2>&1 \
            || die "apt-get install ${packages% } failed (see $WORKDIR/apt.log): no SLURM here"
    fi
    if [[ -n $policy ]]; then
        rm -f "$policy"
        trap - EXIT
    fi
    missing=$(missing_programs | tr '\n' ' ')
    [[ -z $missing ]] || die "installed ${packages% } but still missing: $missing"
}

# --------------------------------------------------------------------------- munge
munge_works() {  # a credential round trip: the only proof that munged and its key are usable
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

munge_key() {  # auth/munge needs a key that only the munge user can read (postinst makes one)
    local key=/etc/munge/munge.key
    [[ -s $key ]] && return 0
    install -d -o munge -g munge -m 0700 /etc/munge
    runuser -u munge -- mungekey --create --keyfile="$key"
    chmod 0400 "$key"
    say "created $key"
}

start_munge() {
    local pid
    drop_stale "$WORKDIR/munged.pid" munged
    if pid=$(alive "$WORKDIR/munged.pid" munged); then
        munge_works && return 0
        die "munged ($pid, started by this script) does not answer: see /var/log/munge/munged.log"
    fi
    if munge_works; then
        say "using the munged that was already running (stop leaves it alone)"
        return 0
    fi
    munge_key
    install -d -o munge -g munge -m 0755 /run/munge   # tmpfiles.d makes it at boot, not in a container
    drop_stale "$MUNGE_PIDFILE" munged                # munged refuses to start over a live-looking one
    runuser -u munge -- "$(command -v munged)" || die "munged failed to start: see /var/log/munge/munged.log"
    pid=$(alive "$MUNGE_PIDFILE" munged) || die "munged started but wrote no pid to $MUNGE_PIDFILE"
    echo "$pid" >"$WORKDIR/munged.pid"
    munge_works || die "munged ($pid) started but a munge/unmunge round trip fails"
    say "started munged ($pid)"
}

# --------------------------------------------------------------------------- accounting
# MariaDB options, the same at initialisation and at every start: loopback TCP only, no
# /etc/mysql, small buffers (a few jobs a minute; about 110 MB on disk). slurmdbd.log says
# "Database settings not recommended values": its advice is for sites with millions of jobs.
db_options() {
    echo --no-defaults --user=root --datadir="$DB_DIR" --bind-address=127.0.0.1 --port="$DB_PORT" \
        --socket="$WORKDIR/mariadb.sock" --skip-name-resolve --innodb-buffer-pool-size=32M \
        --innodb-log-file-size=16M --innodb-lock-wait-timeout=900
}

db_ping() {
    mariadb-admin --no-defaults -h 127.0.0.1 -P "$DB_PORT" -u root ping
}

start_mariadb() {
    local pid
    drop_stale "$WORKDIR/mariadbd.pid" mariadbd
    if pid=$(alive "$WORKDIR/mariadbd.pid" mariadbd); then
        say "mariadbd already running ($pid)"
        return 0
    fi
    if [[ ! -d $DB_DIR/mysql ]]; then   # root without a password, reachable on loopback only
        # shellcheck disable=SC2046  # one argument per option
        mariadb-install-db $(db_options) --auth-root-authentication-method=normal --skip-test-db \
            >"$WORKDIR/log/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed: see $WORKDIR/log/mariadb-install.log"
    fi
    # mariadbd stays in the foreground: detach it from this shell and its terminal.
    # shellcheck disable=SC2046
    setsid mariadbd $(db_options) --pid-file="$WORKDIR/mariadbd.pid" \
        --log-error="$WORKDIR/log/mariadbd.log" </dev/null >/dev/null 2>&1 &
    wait_until 30 "mariadbd on 127.0.0.1:$DB_PORT (see $WORKDIR/log/mariadbd.log)" db_ping
    pid=$(alive "$WORKDIR/mariadbd.pid" mariadbd) || die "mariadbd answers but is not the one started here"
    say "started mariadbd ($pid)"
}

write_dbd_conf() {
    cat >"$DBD_CONF.new" <<EOF
# Written by scripts/slurm-local.sh start: accounting for the cluster in slurm.conf beside it.
AuthType=auth/munge
DbdHost=$(hostname -s)
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$WORKDIR/slurmdbd.pid
LogFile=$WORKDIR/log/slurmdbd.log
EOF
    chmod 0600 "$DBD_CONF.new"   # slurmdbd refuses a conf that others can read
    mv "$DBD_CONF.new" "$DBD_CONF"
}

start_slurmdbd() {
    start_daemon slurmdbd
    wait_until 30 "slurmdbd on 127.0.0.1:$DBD_PORT (see $WORKDIR/log/slurmdbd.log)" \
        sacctmgr -n -P show cluster
    # slurmctld registers with slurmdbd as a known cluster: add it once.
    if [[ -z $(sacctmgr -n -P show cluster shallownet format=cluster 2>/dev/null) ]]; then
        sacctmgr -i add cluster shallownet >/dev/null || die "sacctmgr add cluster shallownet failed"
    fi
}

# --------------------------------------------------------------------------- slurm.conf
write_conf() {
    local host node cpus mem accounting
    host=$(hostname -s)
    node=$(slurmd -C | head -n1)   # this machine as slurmd sees it: CPUs, cores, RealMemory
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    [[ -n $cpus && -n $mem ]] || die "cannot read CPUs/RealMemory from 'slurmd -C': $node"
    if [[ $ACCOUNTING == 1 ]]; then
        accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT"
    else
        accounting="# No slurmdbd: sacct fails with \"accounting storage is disabled\".
AccountingStorageType=accounting_storage/none"
    fi
    cat >"$CONF.new" <<EOF
# Written by scripts/slurm-local.sh start: a single-node cluster without cgroups.
ClusterName=shallownet
# The address in parentheses: daemons and clients talk over loopback, never through DNS.
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$WORKDIR/state
SlurmdSpoolDir=$WORKDIR/spool
SlurmctldPidFile=$WORKDIR/slurmctld.pid
SlurmdPidFile=$WORKDIR/slurmd.pid
SlurmctldLogFile=$WORKDIR/log/slurmctld.log
SlurmdLogFile=$WORKDIR/log/slurmd.log
# Plain process tracking: cgroups may be unavailable (containers) and are not needed here.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$accounting
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that asks no memory gets one CPU's share, not the whole node (CR_Core_Memory).
DefMemPerCPU=$((mem / cpus))
KillWait=$KILL_WAIT
# A node that was down (e.g. slurmd killed) comes back as soon as its slurmd registers.
ReturnToService=2
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.new" "$CONF"
}

# --------------------------------------------------------------------------- daemons
start_daemon() {  # start_daemon PROGRAM: it daemonizes; its pid file is named in its conf
    local prog=$1 pid i
    drop_stale "$WORKDIR/$prog.pid" "$prog"
    if pid=$(alive "$WORKDIR/$prog.pid" "$prog"); then
        say "$prog already running ($pid)"
        return 0
    fi
    "$prog" || die "$prog failed to start: $(tail -n 5 "$WORKDIR/log/$prog.log" 2>/dev/null)"
    for ((i = 0; i < 100; i++)); do   # the pid file appears once it has daemonized
        pid=$(alive "$WORKDIR/$prog.pid" "$prog") && { say "started $prog ($pid)"; return 0; }
        sleep 0.1
    done
    die "$prog exited at start: $(tail -n 5 "$WORKDIR/log/$prog.log" 2>/dev/null)"
}

wait_for_srun() {  # the cluster is up when a job step runs, not when the daemons merely exist
    local deadline=$((SECONDS + START_TIMEOUT)) out=""
    while ((SECONDS < deadline)); do
        if out=$(timeout 20 srun --immediate=10 --time=1 --quiet hostname 2>&1); then
            say "srun hostname -> $out"
            return 0
        fi
        sleep 1
    done
    sinfo -N -l >&2 || true
    tail -n 5 "$WORKDIR/log/slurmctld.log" "$WORKDIR/log/slurmd.log" >&2 || true
    die "srun hostname did not answer within ${START_TIMEOUT}s; last error: $out"
}

any_alive() {  # any_alive PROGRAM...: is one of them running from this workdir?
    local prog
    for prog in "$@"; do alive "$WORKDIR/$prog.pid" "$prog" >/dev/null && return 0; done
    return 1
}

# --------------------------------------------------------------------------- commands
cmd_start() {
    [[ $EUID -eq 0 ]] || die "start needs root (SlurmUser=root; munged runs as the munge user)"
    install_packages
    mkdir -p "$WORKDIR/state" "$WORKDIR/spool" "$WORKDIR/log"
    start_munge
    # (Re)write the confs only while no daemon of ours runs: a running one keeps what it read.
    if ! any_alive slurmctld slurmd slurmdbd; then
        write_conf
        if [[ $ACCOUNTING == 1 ]]; then write_dbd_conf; fi
    fi
    if [[ $ACCOUNTING == 1 ]]; then
        start_mariadb
        start_slurmdbd
    fi
    start_daemon slurmctld
    start_daemon slurmd
    wait_for_srun
    say "cluster up: export SLURM_CONF=$CONF  (or: eval \"\$($0 env)\")"
}

cancel_jobs() {  # running jobs outlive slurmd (slurmstepd is its own daemon): end them first
    alive "$WORKDIR/slurmctld.pid" slurmctld >/dev/null || return 0
    local jobs i
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ') || return 0
    [[ -z ${jobs// /} ]] && return 0
    say "cancelling jobs: $jobs"
    # shellcheck disable=SC2086  # one argument per job id
    scancel $jobs 2>/dev/null || true
    for ((i = 0; i < (KILL_WAIT + 10) * 2; i++)); do   # SIGTERM, KillWait, SIGKILL, cleanup
        [[ -z $(squeue -h -o %A 2>/dev/null) ]] && return 0
        sleep 0.5
    done
    say "jobs still listed after $((KILL_WAIT + 10))s: stopping the daemons anyway"
}

kill_leftovers() {  # what a stopped slurmd left: slurmstepd and its job's processes
    local env pid vars stepds=() tasks=()
    for env in /proc/[0-9]*/environ; do
        pid=${env#/proc/}
        pid=${pid%/environ}
        [[ $pid == "$$" ]] && continue
        vars=$({ tr '\0' '\n' <"$env"; } 2>/dev/null) || continue
        # Both carry SLURM_CONF=$CONF (slurmd was started with it; sbatch exports it to the
        # job): that names this cluster's, not another one's. A task also has SLURM_JOB_ID,
        # which the shell that runs sbatch or this script has not.
        grep -qxF "SLURM_CONF=$CONF" <<<"$vars" || continue
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == slurmstepd ]]; then
            stepds+=("$pid")
        elif grep -q '^SLURM_JOB_ID=' <<<"$vars"; then
            tasks+=("$pid")
        fi
    done
    for pid in "${stepds[@]}" "${tasks[@]}"; do
        stop_pid "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo process)"
    done
}

cmd_stop() {
    local prog pid stopped=0
    cancel_jobs
    # Clients first, then what they talk to: slurmd, slurmctld, slurmdbd, its database, munged.
    for prog in slurmd slurmctld slurmdbd mariadbd munged; do
        drop_stale "$WORKDIR/$prog.pid" "$prog"
        if pid=$(alive "$WORKDIR/$prog.pid" "$prog"); then
            stop_pid "$pid" "$prog"
            stopped=1
        fi
        rm -f "$WORKDIR/$prog.pid"
        [[ $prog == slurmctld ]] && kill_leftovers
    done
    ((stopped)) || say "nothing of $WORKDIR was running"
}

cmd_status() {
    local prog pid
    for prog in slurmctld slurmd slurmdbd mariadbd munged; do
        if pid=$(alive "$WORKDIR/$prog.pid" "$prog"); then
            say "$prog running ($pid)"
        elif [[ $prog == munged ]] && command -v munge >/dev/null && munge_works; then
            say "munged running (not started by this script)"
        else
            say "$prog not running"
        fi
    done
    if ! alive "$WORKDIR/slurmctld.pid" slurmctld >/dev/null || ! alive "$WORKDIR/slurmd.pid" slurmd >/dev/null; then
        say "cluster not running (workdir $WORKDIR)"
        return 1
    fi
    sinfo
}

setup_paths
case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env  (workdir \$SHALLOWNET_SLURM_DIR=$WORKDIR)" >&2; exit 2 ;;
esac
