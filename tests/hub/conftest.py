"""A real HTTP server on the loopback address, serving a folder of weights files as the release assets would."""

from __future__ import annotations

import threading
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args, server_state: WeightsServer, **kwargs) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args) -> None:  # quiet: the requests are recorded instead
        pass

    def do_GET(self) -> None:
        self.state.requests.append(self.path)
        name = self.path.lstrip("/")
        if name in self.state.cut:  # announce the whole file, send half of it, then close the connection
            data = (self.state.folder / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


class WeightsServer:
    """``http.server`` on 127.0.0.1 (a free port) serving ``folder``; ``url`` is its base URL.

    ``requests`` lists the paths asked for; a file named in ``cut`` is sent half, then the connection closes.
    """

    def __init__(self, folder: Path) -> None:
        self.folder, self.requests, self.cut = folder, [], set()
        handler = partial(_Handler, directory=str(folder), server_state=self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        """Stop listening: a connection to ``url`` is refused from now on."""
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
            self.running = False


@pytest.fixture
def weights_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A ``WeightsServer`` of the empty folder ``tmp_path/served``; the zoo may reach it (and only it, through
    ``$ZOO_WEIGHTS_URL``): the suite's no-network guard is lifted for this test."""
    import zoo.hub.download

    folder = tmp_path / "served"
    folder.mkdir()
    server = WeightsServer(folder)
    monkeypatch.setattr(zoo.hub.download, "urlopen", urllib.request.urlopen)
    monkeypatch.setenv("ZOO_WEIGHTS_URL", server.url)
    yield server
    server.stop()
