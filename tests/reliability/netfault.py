"""A loopback TCP proxy in front of moto's server that can break the network: reset the connection of the
next N requests for an API action (matched on the X-Amz-Target header), or of every request while `down`.
A reset is what a client sees when a NAT, a proxy or the network drops it mid-call."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HEAD_END = b"\r\n\r\n"


class NetFaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.resets: dict[str, int] = {}  # action (e.g. "DescribeEndpoint") -> requests left to reset
        self.down = False
        self.reset_count = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @contextmanager
    def network_down(self) -> Iterator[None]:
        self.down = True
        try:
            yield
        finally:
            self.down = False

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            request = _read_request(client)
            if request is None:
                return
            if self._should_reset(request):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
                return
            with socket.create_connection(self.upstream) as upstream:
                upstream.sendall(_with_connection_close(request))
                response = b"".join(iter(lambda: upstream.recv(65536), b""))
            client.sendall(_with_connection_close(response))  # one request per connection: no stale reuse

    def _should_reset(self, request: bytes) -> bool:
        head = request.split(HEAD_END, 1)[0].decode("latin-1").lower()
        action = next((line.split(".", 1)[-1].strip() for line in head.split("\r\n")
                       if line.startswith("x-amz-target:")), "")
        with self._lock:
            left = next((n for name, n in self.resets.items() if name.lower() == action), 0)
            if self.down or left > 0:
                for name in self.resets:
                    if name.lower() == action and self.resets[name] > 0:
                        self.resets[name] -= 1
                self.reset_count += 1
                return True
        return False


def _read_request(sock: socket.socket) -> bytes | None:
    data = b""
    while HEAD_END not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(HEAD_END, 1)
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + HEAD_END + body


def _with_connection_close(message: bytes) -> bytes:
    head, _, body = message.partition(HEAD_END)
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + HEAD_END + body
