"""The service as a real server process (`vocalis serve`): memory, streaming caps, timeouts,
overload, startup errors. Each test talks to the process over a socket, as a client would."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _inference_helpers import synth_clip

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
psutil = pytest.importorskip("psutil", reason="the memory checks read the server's RSS (psutil)")

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _start(args: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli.main", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    line = proc.stdout.readline()
    match = re.search(r"listening on http://[\d.]+:(\d+)", line)
    assert match, line + proc.stdout.read()
    port = int(match.group(1))
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain the log
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            status, _, _ = _request(port, "GET", "/health")
            if status == 200:
                return proc, port
        except OSError:
            pass
        assert proc.poll() is None, "the server exited"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not answer /health within 120 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=body or None, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "vocalisboundary1234"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def _upload(port: int, name: str, data: bytes):
    body, boundary = _multipart(name, data)
    ctype = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return _request(port, "POST", "/predict", body, ctype)


def _flac(seconds: float, sr: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * sr), dtype=np.float32), sr, format="FLAC")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tier1_ckpt):
    proc, port = _start(
        [
            "--checkpoint",
            str(tier1_ckpt),
            "--max-upload-mb",
            "1",
            "--max-duration",
            "10",
            "--max-queue",
            "1",
            "--header-timeout",
            "1",
            "--body-timeout",
            "2",
            "--queue-timeout",
            "3",
        ]
    )
    yield proc, port
    _stop(proc)


def _rss_mb(proc: subprocess.Popen) -> float:
    return psutil.Process(proc.pid).memory_info().rss / 1024 / 1024


def test_thirty_minutes_of_silence_costs_no_memory(server):
    """Acceptance: a 30-min FLAC of silence: 413 naming the duration limit, RSS + < 50 MB."""
    proc, port = server
    flac = _flac(30 * 60)
    assert len(flac) < 1024 * 1024  # small enough to pass the upload limit
    status, _, _ = _upload(port, "warm.wav", _wav_bytes(1.0))  # first prediction warms up
    assert status == 200
    before = _rss_mb(proc)
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(_upload(port, "silence.flac", flac)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = _rss_mb(proc) - before
    for status, _, body in answers:
        if status == 503:  # the queue holds one: the others are told to come back
            continue
        assert status == 413
        detail = json.loads(body)["detail"]
        assert "1800.0 s" in detail and "limit of 10 s" in detail
    assert any(a[0] == 413 for a in answers)
    assert grown < 50, f"server RSS grew by {grown:.0f} MB"


def _wav_bytes(seconds: float) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, synth_clip(seconds, 1), 16000, format="WAV")
    return buf.getvalue()


def test_chunked_upload_is_refused_while_streaming(server):
    """A chunked body (no Content-Length) is cut at the limit, not read to its end."""
    _, port = server
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    boundary = "b0undary"
    sock.sendall(
        (
            "POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        ).encode()
    )
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
    ).encode()
    chunk = b"\0" * 65536
    sent, reply = 0, b""
    sock.settimeout(0.05)
    try:
        sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        while sent < 500 * 1024 * 1024:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
            try:
                reply += sock.recv(65536)
                if reply:
                    break
            except TimeoutError:
                pass
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(5)
    try:
        while not reply.endswith(b"}"):  # the JSON body ends the answer
            more = sock.recv(65536)
            if not more:
                break
            reply += more
    except (TimeoutError, ConnectionResetError):
        pass
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"refused while streaming" in reply and b"limit of 1 MiB" in reply
    assert sent < 40 * 1024 * 1024, f"{sent / 2**20:.0f} MiB were accepted before the 413"


def test_slow_headers_are_cut(server):
    _, port = server
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
    start = time.monotonic()
    assert sock.recv(100) == b""  # the server closes the connection
    assert time.monotonic() - start < 5
    sock.close()


def test_slow_body_gets_408(server):
    _, port = server
    body, boundary = _multipart("slow.wav", _wav_bytes(1.0))
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
        ).encode()
        + body[:100]
    )
    start = time.monotonic()
    reply = sock.recv(4096)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert 1.5 < time.monotonic() - start < 6


def test_overload_is_503_with_retry_after(server):
    """One running + one queued slow upload fill the server: the next gets 503 at once."""
    _, port = server
    body, boundary = _multipart("slow.wav", _wav_bytes(1.0))
    slow = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            (
                f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
            ).encode()
            + body[:100]
        )
        slow.append(sock)
    time.sleep(0.3)
    start = time.monotonic()
    status, headers, data = _upload(port, "x.wav", _wav_bytes(1.0))
    assert status == 503 and headers.get("retry-after") == "2", (status, data)
    assert "server busy" in json.loads(data)["detail"]
    assert time.monotonic() - start < 1
    for sock in slow:
        sock.close()
    time.sleep(2.5)  # the slow ones time out (408) and free their slots
    status, _, _ = _upload(port, "x.wav", _wav_bytes(1.0))
    assert status == 200


def test_openapi_lists_the_error_answers(server):
    _, port = server
    _status, _, data = _request(port, "GET", "/openapi.json")
    schema = json.loads(data)
    predict = schema["paths"]["/predict"]["post"]["responses"]
    assert {"200", "400", "408", "413", "422", "503"} <= set(predict)
    assert "Retry-After" in predict["503"]["headers"]
    assert "404" in schema["paths"]["/static/{name}"]["get"]["responses"]


def _serve_fails(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vocalis.cli.main", "serve", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )


def test_bad_and_busy_ports_fail_in_one_line_before_loading(tmp_path):
    result = _serve_fails(["--port", "99999"])
    assert result.returncode == 2
    assert "99999 is not a TCP port" in result.stderr and result.stdout == ""
    # a file that exists but is no checkpoint would fail at load time: the port error first
    unloadable = tmp_path / "model.pt"
    unloadable.write_bytes(b"not a checkpoint")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _serve_fails(["--port", str(port), "--checkpoint", str(unloadable)])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert "listening" not in result.stdout


def test_two_uvicorn_workers_serve(tier1_ckpt):
    proc, port = _start(["--checkpoint", str(tier1_ckpt), "--workers", "2"])
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len([c for c in children if "python" in c.name().lower()]) >= 2
        status, _, data = _upload(port, "x.wav", _wav_bytes(1.0))
        assert status == 200 and json.loads(data)["label"]
    finally:
        _stop(proc)
    assert proc.returncode is not None
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != "zombie"]
