"""lmi-serve's life: both seed templates, SIGTERM under load, engine death, and failures at start."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from tests.e2e.conftest import start_server, stream_in_thread, wait_healthy
from tests.seed_templates import seed_properties

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def test_properties_template_and_sigterm_under_load(tiny_model: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "serving.properties").write_text(seed_properties(str(tiny_model)))
    server = start_server({}, tmp_path / "log.txt", "--model-dir", str(model_dir))
    try:
        ok = httpx.post(server.url + "/invocations", json={"inputs": "hello", "parameters": {"max_new_tokens": 3}})
        assert ok.status_code == 200
        lines: list[Any] = []
        thread = stream_in_thread(server, 150, lines)
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):  # no new connections once draining
            httpx.post(server.url + "/invocations", json={"inputs": "late"}, timeout=5)
        thread.join(120)
        assert server.process.wait(90) == 0
    finally:
        server.stop()
    assert len(lines) == 150, lines[-1:]
    assert lines[-1]["details"]["finish_reason"] == "length"


def test_engine_death_fails_ping_and_exits_non_zero(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server({"OPTION_MODEL_ID": str(tiny_model), "OPTION_MAX_MODEL_LEN": "2048"},
                          tmp_path / "log.txt")
    try:
        lines: list[Any] = []
        thread = stream_in_thread(server, 2000, lines)  # several seconds of tokens: still running when killed
        deadline = time.monotonic() + 30
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
        engines = [p for p in psutil.Process(server.process.pid).children(recursive=True)
                   if "EngineCore" in " ".join(p.cmdline()) or "EngineCore" in p.name()]
        assert engines, "no EngineCore process found"
        killed_at = time.monotonic()
        for process in engines:
            process.kill()
        status = 200
        while time.monotonic() - killed_at < 2.0 and status == 200:
            try:
                status = httpx.get(server.url + "/ping", timeout=1).status_code
            except httpx.TransportError:
                status = 0
            time.sleep(0.1)
        assert status != 200
        thread.join(60)
        assert server.process.wait(60) != 0
    finally:
        server.stop()
    last = lines[-1] if lines else {}
    assert "error" in last or "transport_error" in last, last
    assert "engine" in server.logs().lower()


@pytest.mark.parametrize("case", ["missing", "no_config", "unsupported"])
def test_bad_model_exits_quickly_with_one_clear_line(case: str, tmp_path: Path) -> None:
    model = tmp_path / "model"
    if case != "missing":
        model.mkdir()
    if case == "unsupported":
        (model / "config.json").write_text(json.dumps({"architectures": ["TotallyNewForCausalLM"],
                                                       "model_type": "totally_new"}))
    started = time.monotonic()
    server = start_server({"OPTION_MODEL_ID": str(model)}, tmp_path / "log.txt", wait=False)
    code = server.process.wait(120)
    assert code == 1
    assert time.monotonic() - started < 120
    errors = [line for line in server.logs().splitlines() if "ERROR" in line and "lmi-serve:" in line]
    assert len(errors) == 1, server.logs()[-3000:]
    expected = {"missing": str(model), "no_config": "config.json", "unsupported": "totally_new"}[case]
    assert expected in errors[0]


def test_ping_is_503_while_the_model_loads(tiny_model: Path, tmp_path: Path) -> None:
    server = start_server({"OPTION_MODEL_ID": str(tiny_model)}, tmp_path / "log.txt", wait=False)
    try:
        seen = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and 503 not in seen:
            with contextlib.suppress(httpx.TransportError):
                seen.add(httpx.get(server.url + "/ping", timeout=1).status_code)
            time.sleep(0.1)
        assert 503 in seen
        wait_healthy(server)
    finally:
        server.stop()
