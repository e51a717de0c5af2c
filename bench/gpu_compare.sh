#!/usr/bin/env bash
# lmi-serve against vLLM's own OpenAI server (the same vLLM, the same engine arguments), one server at a time,
# measured by `lmi-deploy bench` (streaming, 512 input / 256 output tokens, EOS ignored).
#
#   bash bench/gpu_compare.sh MODEL_DIR compare   # one GPU: vLLM's server, then lmi-serve defaults: 1, 64, 256 clients
#   bash bench/gpu_compare.sh MODEL_DIR seed      # one GPU: lmi-serve with the seed template's max_rolling_batch_size=64
#   bash bench/gpu_compare.sh MODEL_DIR copies    # 2 GPUs: vLLM --data-parallel-size 2, lmi-serve defaults (auto): 64, 256
#   bash bench/gpu_compare.sh MODEL_DIR copies-1api  # the same with one API process each (--api-server-count 1): 256
#   bash bench/gpu_compare.sh MODEL_DIR tp2       # 2 GPUs: vLLM --tensor-parallel-size 2, lmi-serve TP=max: 64, 256
#   bash bench/gpu_compare.sh MODEL_DIR one-gpu   # GPU 0 of the host: both servers' defaults at 256 (the 1.8x base)
#   bash bench/gpu_compare.sh AWQ_DIR awq         # one GPU: lmi-serve option.quantize=awq (bench/gpu_awq_model.py)
#
# ROUNDS (default 4): requests per level as a multiple of its clients (more rounds: less weight on the ramp-up
# and the last round).
# COLD=1 gives every server empty vLLM / inductor / Triton caches, so start-up times compare cold against cold.
# GPUS (default 0, or 0,1 for copies/tp2) sets CUDA_VISIBLE_DEVICES. NVLink multicast stays off.
#
# Writes "${OUT:-/tmp/out}"/<phase>.json (one bench summary list per server, cold starts) and server logs; with
# py-spy on PATH, a 15 s profile of lmi-serve under the largest load (lmi-serve.collapsed, py-spy raw format).
# Needs python3 with vLLM, lmi_deploy, lmi_serve (container/) and httpx importable (see shared/gpu/README.md).
set -uo pipefail
model=${1:?usage: gpu_compare.sh MODEL_DIR compare|seed}
phase=${2:-compare}
out=${OUT:-/tmp/out}
levels=${LEVELS:-1,64,256}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 VLLM_USE_FLASHINFER_SAMPLER=0
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
case $phase in copies|tp2|profile-auto) export CUDA_VISIBLE_DEVICES=${GPUS:-0,1}; levels=${LEVELS:-64,256} ;;
               copies-1api|copies-1api-lmi) export CUDA_VISIBLE_DEVICES=${GPUS:-0,1}; levels=${LEVELS:-256} ;;
               one-gpu) export CUDA_VISIBLE_DEVICES=${GPUS:-0}; levels=${LEVELS:-256} ;;
               *) export CUDA_VISIBLE_DEVICES=${GPUS:-0} ;; esac

wait_ready() {  # PID URL LOG -> prints seconds from start to ready
  local pid=$1 url=$2 log=$3 started=$4
  for _ in $(seq 1 2400); do
    if ! kill -0 "$pid" 2>/dev/null; then echo "server died" >&2; tail -30 "$log" >&2; return 1; fi
    if curl -sf "$url" >/dev/null 2>&1; then python3 -c "import time; print(round(time.time() - $started, 2))"; return 0; fi
    sleep 0.25
  done
  return 1
}

run_bench() {  # TARGET URL LABEL LEVELS
  python3 -m lmi_deploy.cli.main bench --target "$1" --url "$2" --model model --label "$3" --concurrency "$4" \
    --input-tokens 512 --output-tokens 256 --tokenizer "$model" --warmup 1 --rounds "${ROUNDS:-4}" --processes 8 --output json
}

serve() {  # NAME PORT -> starts a server in the background, sets PID
  local name=$1 port=$2
  # `vllm serve` itself (its CLI, which picks the API process count: one per data-parallel copy by default)
  local vllm=(python3 -m vllm.entrypoints.cli.main serve "$model" --port "$port"
                                --served-model-name model --disable-uvicorn-access-log)
  if [ "${COLD:-0}" = 1 ]; then
    local cache=/tmp/cold-cache/$name; rm -rf "$cache"; mkdir -p "$cache"
    export VLLM_CACHE_ROOT=$cache/vllm TORCHINDUCTOR_CACHE_DIR=$cache/inductor TRITON_CACHE_DIR=$cache/triton
  fi
  started=$(python3 -c "import time; print(time.time())")
  case $name in
    vllm-serve) setsid "${vllm[@]}" > "$out/$name.log" 2>&1 & ;;
    vllm-serve-dp2) setsid "${vllm[@]}" --data-parallel-size 2 > "$out/$name.log" 2>&1 & ;;
    vllm-serve-dp2-1api) setsid "${vllm[@]}" --data-parallel-size 2 --api-server-count 1 > "$out/$name.log" 2>&1 & ;;
    vllm-serve-tp2) setsid "${vllm[@]}" --tensor-parallel-size 2 > "$out/$name.log" 2>&1 & ;;
    lmi-serve|lmi-serve-auto) setsid env OPTION_MODEL_ID="$model" SAGEMAKER_BIND_TO_PORT="$port" \
                  python3 -m lmi_serve.cli serve > "$out/$name.log" 2>&1 & ;;
    lmi-serve-auto-1api) setsid env OPTION_MODEL_ID="$model" SAGEMAKER_BIND_TO_PORT="$port" OPTION_API_SERVER_COUNT=1 \
                  python3 -m lmi_serve.cli serve > "$out/$name.log" 2>&1 & ;;
    lmi-serve-tp2) setsid env OPTION_MODEL_ID="$model" SAGEMAKER_BIND_TO_PORT="$port" OPTION_TENSOR_PARALLEL_DEGREE=max \
                  python3 -m lmi_serve.cli serve > "$out/$name.log" 2>&1 & ;;
    lmi-serve-awq) setsid env OPTION_MODEL_ID="$model" SAGEMAKER_BIND_TO_PORT="$port" OPTION_QUANTIZE=awq \
                  python3 -m lmi_serve.cli serve > "$out/$name.log" 2>&1 & ;;
    lmi-serve-seed) setsid env SERVING_LOAD_MODELS=test::Python=/opt/ml/model OPTION_MODEL_ID="$model" \
                  OPTION_TENSOR_PARALLEL_DEGREE=max OPTION_MAX_ROLLING_BATCH_SIZE=64 OPTION_ROLLING_BATCH=vllm \
                  SAGEMAKER_BIND_TO_PORT="$port" python3 -m lmi_serve.cli serve > "$out/$name.log" 2>&1 & ;;
  esac
  PID=$!
}

stop() {  # PID: TERM, wait for it, then end whatever is left of its process group (engine processes)
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 1 120); do kill -0 "$1" 2>/dev/null || break; sleep 0.5; done
  kill -TERM -- "-$1" 2>/dev/null; sleep 2; kill -KILL -- "-$1" 2>/dev/null
  for _ in $(seq 1 30); do  # the next server needs the GPUs' memory back
    [ "$(nvidia-smi --query-compute-apps=pid --format=csv,noheader | wc -l)" = 0 ] && return 0; sleep 1
  done
}

PID=""
# Killed midway (a `timeout` around the call): stop the server being measured, so the next call finds free GPUs.
halt() {  # PID: no draining, the measurement is abandoned: TERM the group, KILL it 10 s later
  kill -TERM -- "-$1" 2>/dev/null
  for _ in $(seq 1 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$1" 2>/dev/null; sleep 1
}
trap '[ -n "$PID" ] && halt "$PID"; exit 124' INT TERM

measure() {  # NAME TARGET PROBE LEVELS
  local name=$1 target=$2 probe=$3 lv=$4 port=$((8100 + RANDOM % 500))
  serve "$name" "$port"
  local ready
  ready=$(wait_ready "$PID" "http://127.0.0.1:$port$probe" "$out/$name.log" "$started") || { stop "$PID"; PID=""; return 1; }
  echo "$name ready in $ready s" >&2
  if [ "$name" = "${PROFILE_SERVER:-lmi-serve}" ] && command -v py-spy >/dev/null; then
    (sleep "${PROFILE_DELAY:-40}"; py-spy record --nonblocking -r 50 -d 15 -f raw -o "$out/$name.collapsed" -p "$PID" \
       > "$out/py-spy.log" 2>&1) &
  fi
  run_bench "$target" "http://127.0.0.1:$port" "$name" "$lv" > "$out/$name.bench.json" 2> "$out/$name.bench.log" &
  local bench=$!
  (while kill -0 "$bench" 2>/dev/null; do  # CPU per process under load (top's second sample: the last 2 s)
     sleep 10; echo "== $(date +%T)"; top -c -b -n 2 -d 2 -w 200 | awk '/^top -/{n++} n==2' | sed -n 7,20p
   done > "$out/$name.top.txt" 2>&1) &
  local sampler=$!
  wait "$bench"  # in the background, so that a TERM reaches the trap at once
  kill "$sampler" 2>/dev/null
  stop "$PID"; PID=""
  python3 - "$out" "$name" "$ready" <<'PY'
import json, sys
out, name, ready = sys.argv[1], sys.argv[2], float(sys.argv[3])
summaries = json.load(open(f"{out}/{name}.bench.json"))
json.dump({"server": name, "ready_s": ready, "bench": summaries}, open(f"{out}/{name}.result.json", "w"), indent=1)
for s in summaries:
    print(f"{name:>15} c={s['concurrency']:>3} out={s['output_throughput']:>8.0f} tok/s ttft={s['ttft_ms']['mean']:>7.0f} ms "
          f"tpot={s['tpot_ms']['mean']:>6.2f} ms err={s['errors']}")
PY
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt"
python3 -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)" >> "$out/gpu.txt"
case $phase in
  compare) measure vllm-serve openai /health "$levels"; measure lmi-serve lmi /ping "$levels" ;;
  seed) measure lmi-serve-seed lmi /ping "${SEED_LEVELS:-256}" ;;
  profile-auto) measure lmi-serve-auto lmi /ping 256 ;;  # with PROFILE_SERVER=lmi-serve-auto PROFILE_DELAY=12
  copies) measure vllm-serve-dp2 openai /health "$levels"; measure lmi-serve-auto lmi /ping "$levels" ;;
  copies-1api) measure vllm-serve-dp2-1api openai /health "$levels"; measure lmi-serve-auto-1api lmi /ping "$levels" ;;
  copies-1api-lmi) measure lmi-serve-auto-1api lmi /ping "$levels" ;;  # lmi-serve's half of copies-1api
  one-gpu) measure vllm-serve openai /health "$levels"; measure lmi-serve lmi /ping "$levels" ;;
  awq) measure lmi-serve-awq lmi /ping "${AWQ_LEVELS:-1,64}" ;;  # MODEL_DIR: an AWQ checkpoint (gpu_awq_model.py)
  tp2) measure vllm-serve-tp2 openai /health "$levels"; measure lmi-serve-tp2 lmi /ping "$levels" ;;
esac
cat "$out/gpu.txt"
