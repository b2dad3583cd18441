#!/usr/bin/env bash
# mpirun on localhost as the tests need it: more ranks than cores allowed (--oversubscribe), no pinning
# (--bind-to none: each rank's OpenMP threads choose their cores), root allowed where the tests run as
# root (containers), and shared memory without the cross-memory-attach mechanism that containers
# usually forbid. A timeout turns a hang into a failure.
#   tests/mpi/mpirun.sh -np 2 PROGRAM [ARGS...]       (anything mpirun takes, e.g. MPMD with ':')
#   environment: CCT_MPI_TIMEOUT seconds (default 300)
set -euo pipefail
flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
export OMPI_MCA_btl_vader_single_copy_mechanism=none
exec timeout --kill-after=10 "${CCT_MPI_TIMEOUT:-300}" mpirun "${flags[@]}" "$@"
