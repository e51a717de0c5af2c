#!/usr/bin/env bash
# The GPU host's steps after the bundle's parts are in /root/stage (shared/gpu/README.md), one call each:
#   bash bench/gpu_session.sh setup            # install the bundle, write the random Mistral-7B (and its AWQ copy)
#   bash bench/gpu_session.sh PHASE [PHASE...]  # phases of bench/gpu_compare.sh, AWQ model for "awq"
# Results go to $OUT/<phase>.tgz (the phase's folder, archived). Wrap the call in `timeout N`, N 30 s below the call's
# limit: a TERM stops the server being measured (~10 s) and archives what was measured so far.
set -uo pipefail
export PYTHONPATH=$PWD/container:$PWD:/root/site PATH=/root/site/bin:$PATH
model=/root/models/mistral7b awq=/root/models/mistral7b-awq
interrupted=0
trap 'interrupted=1' INT TERM  # let the running phase stop its server, archive what it has, then end
for step in "$@"; do
  start=$(date +%s)
  case $step in
    setup) bash /root/stage/install.sh && python3 /root/stage/mkmodel.py "$model" ;;
    awq-model) python3 bench/gpu_awq_model.py "$model" "$awq" 128 ;;
    awq) OUT=$OUT/awq bash bench/gpu_compare.sh "$awq" awq ;;
    cold-compare) COLD=1 OUT=$OUT/compare bash bench/gpu_compare.sh "$model" compare ;;
    *) OUT=$OUT/$step bash bench/gpu_compare.sh "$model" "$step" ;;
  esac
  echo "== $step: $(( $(date +%s) - start )) s"
  # one archive per phase: the device returns a limited number of files per call
  [ -d "$OUT/$step" ] && tar -czf "$OUT/$step.tgz" -C "$OUT" "$step" && rm -rf "${OUT:?}/$step"
  [ "$interrupted" = 1 ] && { echo "== interrupted after $step"; exit 124; }
done
