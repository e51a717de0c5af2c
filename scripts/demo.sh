#!/usr/bin/env bash
# The README demo: what lmi-deploy does today, on the seed's deployment templates.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "== 1. The seed's serving.properties template, validated and rendered as container variables"
workdir=$(mktemp -d); trap 'rm -rf "$workdir"' EXIT
cat > "$workdir/serving.properties" <<'PROPS'
engine=Python
option.tensor_parallel_degree=max
option.model_id=mistralai/Mistral-7B-v0.1
option.max_rolling_batch_size=64
option.rolling_batch=vllm
PROPS
step $BIN/lmi-deploy config --properties "$workdir/serving.properties" --format env

echo; echo "== 2. The same deployment as JSON (environment, serving.properties, vLLM engine arguments)"
step $BIN/lmi-deploy config --model mistralai/Mistral-7B-v0.1 --option tensor_parallel_degree=max \
  --option max_rolling_batch_size=64 --option rolling_batch=vllm --format json

echo; echo "== 3. What the container would start with the seed's all-environment template"
step env SERVING_LOAD_MODELS=test::Python=/opt/ml/model OPTION_MODEL_ID=mistralai/Mistral-7B-v0.1 \
  OPTION_TENSOR_PARALLEL_DEGREE=max OPTION_MAX_ROLLING_BATCH_SIZE=64 OPTION_ROLLING_BATCH=vllm \
  $BIN/lmi-serve serve --print-config

echo; echo "== 4. A typo is caught before anything is deployed (exit code 2)"
set +e
step $BIN/lmi-deploy config --model mistralai/Mistral-7B-v0.1 --option max_rolling_batch_szie=64
echo "exit code: $?"
