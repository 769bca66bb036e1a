#!/bin/bash
# Submit a sharded sweep: a SHARDS-task array of scripts/slurm/sweep.sbatch,
# then the merge + report job, which starts once every shard has succeeded.
#
#   CONFIG=configs/x.toml SHARDS=16 scripts/slurm/submit.sh [extra sbatch args]
#
# Extra arguments go to both sbatch calls (e.g. --partition=gpu --account=me).
set -euo pipefail

: "${CONFIG:?set CONFIG=configs/<name>.toml}"
: "${SHARDS:?set SHARDS=N}"
here=$(dirname "$0")
mkdir -p logs

jid=$(sbatch --parsable --array="0-$((SHARDS - 1))" \
    --export=ALL,CONFIG="$CONFIG",SHARDS="$SHARDS" "$@" "$here/sweep.sbatch")
echo "sweep array job $jid ($SHARDS shards)"
mid=$(sbatch --parsable --dependency="afterok:${jid}" --job-name=hyperscale-merge \
    --gres=gpu:0 --cpus-per-task=4 --time=02:00:00 \
    --export=ALL,CONFIG="$CONFIG",SHARDS="$SHARDS" "$@" "$here/sweep.sbatch")
echo "merge + report job $mid (after $jid succeeds)"
