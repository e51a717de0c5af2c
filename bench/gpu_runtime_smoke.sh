#!/usr/bin/env bash
# GPU smoke test of the container runtime: `lmi-serve serve` with the seed's all-environment template on a
# local checkpoint, then LMI requests (plain, streaming, a batch of 4), an OpenAI chat body, /ping, /metrics,
# and a SIGTERM stop by PID. Timings: process start to the first /ping 200, and each request's wall time.
#
#   bash bench/gpu_runtime_smoke.sh MODEL_DIR
#
# MODEL_DIR is a Hugging Face checkpoint (e.g. the random-weight Mistral-7B that the GPU bundle's mkmodel.py
# writes). If it has no config.json and MKMODEL (default /root/stage/mkmodel.py) exists, that script builds
# it first. lmi_serve, lmi_deploy and vLLM must be importable by python3 (PYTHONPATH). Results land in
# "${OUT:-/tmp/out}": summary.json, responses.json, metrics.txt, server.log, env.txt.
# Exit status: 0 when every check passed, 1 otherwise (the files are written either way).
set -uo pipefail
model=${1:?usage: gpu_runtime_smoke.sh MODEL_DIR}
out=${OUT:-/tmp/out}
port=${PORT:-8080}
startup_timeout_s=${STARTUP_TIMEOUT_S:-420}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  python3 - <<'PY' 2>&1
import sys, torch, vllm, lmi_serve, lmi_deploy
print("python", sys.version.split()[0], "| torch", torch.__version__, "| vllm", vllm.__version__)
print("lmi_serve from", lmi_serve.__file__, "| lmi_deploy from", lmi_deploy.__file__)
PY
} > "$out/env.txt"
cat "$out/env.txt"

if [ ! -f "$model/config.json" ] && [ -f "${MKMODEL:-/root/stage/mkmodel.py}" ]; then
  echo "building $model"
  python3 "${MKMODEL:-/root/stage/mkmodel.py}" "$model" 2>&1 | tail -3 | tee -a "$out/env.txt"
fi

# The seed's environment template, with the model at MODEL_DIR. HF_HUB_OFFLINE / VLLM_NO_USAGE_STATS: the host
# has no internet. VLLM_USE_FLASHINFER_SAMPLER=0: flashinfer's prebuilt sampler kernels are not in the bundle.
start=$(date +%s.%N)
setsid env SERVING_LOAD_MODELS=test::Python=/opt/ml/model OPTION_MODEL_ID="$model" \
  OPTION_TENSOR_PARALLEL_DEGREE=max OPTION_MAX_ROLLING_BATCH_SIZE=64 OPTION_ROLLING_BATCH=vllm \
  SAGEMAKER_BIND_TO_PORT="$port" VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 \
  python3 -m lmi_serve.cli serve > "$out/server.log" 2>&1 &
pid=$!
echo "lmi-serve pid $pid"

# Poll /ping, measure the requests, then SIGTERM the server by its PID; all in one Python client (stdlib only).
python3 - "$pid" "$port" "$start" "$startup_timeout_s" "$out" <<'PY'
import http.client, json, os, signal, sys, time

pid, port, start, timeout, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
summary = {"pid": pid, "port": port}
results = []

def alive():
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False

def call(method, path, body=None, stream=False, timeout_s=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    t0 = time.monotonic()
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    resp = conn.getresponse()
    first = None
    lines = []
    if stream:
        while True:
            line = resp.readline()
            if not line:
                break
            if first is None:
                first = time.monotonic() - t0
            if line.strip():
                lines.append(line.decode(errors="replace").rstrip("\n"))
        raw = "\n".join(lines)
    else:
        raw = resp.read().decode(errors="replace")
    wall = time.monotonic() - t0
    record = {"method": method, "path": path, "request": body, "status": resp.status,
              "content_type": resp.getheader("Content-Type"), "wall_s": round(wall, 4)}
    if stream:
        record["first_line_s"] = None if first is None else round(first, 4)
        record["lines"] = len(lines)
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except ValueError:
                parsed.append(line)
        record["response"] = parsed
    else:
        try:
            record["response"] = json.loads(raw)
        except ValueError:
            record["response"] = raw if len(raw) < 4000 else raw[:4000] + "..."
    conn.close()
    return record, raw

# 1. Process start to /ping 200.
first_answer = first_503 = ready = None
statuses = {}
while time.time() - start < timeout and alive():
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/ping")
        status = conn.getresponse().status
        conn.close()
        statuses[status] = statuses.get(status, 0) + 1
        now = time.time() - start
        first_answer = first_answer if first_answer is not None else now
        if status == 503 and first_503 is None:
            first_503 = now
        if status == 200:
            ready = now
            break
    except OSError:
        pass
    time.sleep(0.25)
summary.update(http_up_s=first_answer and round(first_answer, 2), first_ping_503_s=first_503 and round(first_503, 2),
               ping_200_s=ready and round(ready, 2), ping_statuses_while_loading=statuses)
print(f"/ping 200 after {ready} s (first answer {first_answer} s, statuses {statuses})", flush=True)

checks = {"ping_200": ready is not None}
if ready is not None:
    prompt = "The capital of France is"
    lmi = {"inputs": prompt, "parameters": {"max_new_tokens": 32, "details": True}}
    plan = [
        ("ping", "GET", "/ping", None, False),
        ("lmi_single_first", "POST", "/invocations", lmi, False),
        ("lmi_single_again", "POST", "/invocations", lmi, False),
        ("lmi_stream", "POST", "/invocations", {**lmi, "stream": True}, True),
        ("lmi_batch4", "POST", "/invocations",
         {"inputs": [prompt, "Hello, my name is", "def fibonacci(n):", "Once upon a time"],
          "parameters": {"max_new_tokens": 32, "details": True}}, False),
        ("openai_chat_on_invocations", "POST", "/invocations",
         {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}, False),
    ]
    for name, method, path, body, stream in plan:
        try:
            record, _ = call(method, path, body, stream)
        except Exception as exc:  # record and go on
            record = {"method": method, "path": path, "request": body, "error": f"{type(exc).__name__}: {exc}"}
        record["name"] = name
        results.append(record)
        print(name, record.get("status"), record.get("wall_s"), "s", flush=True)
    try:
        record, raw = call("GET", "/metrics")
        with open(os.path.join(out, "metrics.txt"), "w") as f:
            f.write(raw)
        names = sorted({line.split("{")[0].split(" ")[0] for line in raw.splitlines()
                        if line.startswith("vllm:")})
        record["response"] = {"bytes": len(raw), "vllm_metric_series": len(names), "vllm_metric_names": names,
                              "lmi_lines": [l for l in raw.splitlines() if l.startswith("lmi_requests_total")]}
    except Exception as exc:
        record = {"method": "GET", "path": "/metrics", "error": f"{type(exc).__name__}: {exc}"}
    record["name"] = "metrics"
    results.append(record)
    by = {r["name"]: r for r in results}
    def ok(name):
        return by.get(name, {}).get("status") == 200
    single = by["lmi_single_first"].get("response") or {}
    checks.update(
        ping=ok("ping"),
        lmi_single=ok("lmi_single_first") and ok("lmi_single_again") and isinstance(single, dict)
            and 0 < (single.get("details") or {}).get("generated_tokens", 0) <= 32,
        lmi_stream=ok("lmi_stream") and by["lmi_stream"].get("lines", 0) > 1
            and "jsonlines" in (by["lmi_stream"].get("content_type") or ""),
        lmi_batch4=ok("lmi_batch4") and isinstance(by["lmi_batch4"].get("response"), list)
            and len(by["lmi_batch4"]["response"]) == 4,
        openai_chat_answered=by["openai_chat_on_invocations"].get("status") in (200, 400),
        metrics_vllm=ok("metrics") and by["metrics"]["response"].get("vllm_metric_series", 0) > 0,
    )

# 2. SIGTERM by PID; the shell that started the server collects the exit code (it is the parent).
summary["server_alive_before_sigterm"] = alive()
t0 = time.monotonic()
if alive():
    os.kill(pid, signal.SIGTERM)
    while alive() and time.monotonic() - t0 < 90:
        time.sleep(0.1)
summary["sigterm_to_exit_s"] = round(time.monotonic() - t0, 2)
summary["exited_within_90s"] = not alive()
summary["requests"] = [{k: r.get(k) for k in ("name", "path", "status", "wall_s", "first_line_s", "lines", "error")}
                       for r in results]
summary["checks"] = checks
with open(os.path.join(out, "responses.json"), "w") as f:
    json.dump(results, f, indent=1)
with open(os.path.join(out, "summary.partial.json"), "w") as f:
    json.dump(summary, f, indent=1)
PY

if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
  echo "server still running 90 s after SIGTERM: SIGKILL"  # never leave a server behind on the machine
  kill -KILL "$pid"
fi
wait "$pid"
rc=$?
echo "lmi-serve exit code $rc"

python3 - "$out" "$rc" <<'PY'
import json, os, sys
out, rc = sys.argv[1], int(sys.argv[2])
path = os.path.join(out, "summary.partial.json")
summary = json.load(open(path)) if os.path.exists(path) else {"checks": {}}
summary["exit_code"] = rc
summary["checks"]["exit_code_0"] = rc == 0
summary["all_passed"] = all(summary["checks"].values()) and bool(summary["checks"])
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
if os.path.exists(path):
    os.remove(path)
print(json.dumps(summary, indent=1))
sys.exit(0 if summary["all_passed"] else 1)
PY
