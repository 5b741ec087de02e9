"""Downloads from a local HTTP server on 127.0.0.1: verification, resumption, clear failures.

Nothing here reaches the internet: every address is a server started by the test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from nyu_files import require_shared_data

from depth_lightning.data import download
from depth_lightning.data.download import REGISTRY, fetch, read_records
from depth_lightning.errors import DataError


class FileServer(ThreadingHTTPServer):
    """Serves `files` (path -> bytes); `break_after` bytes of the first GET of a path are sent
    before the connection is dropped; `ranges=False` ignores Range headers (answers 200)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.break_after: int | None = None
        self.ranges = True
        self.log: list[tuple[str, str | None]] = []  # (path, Range header) per GET

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        srv = self.server
        first = all(p != self.path for p, _ in srv.log)
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if srv.ranges else "none")
        self.end_headers()
        if first and srv.break_after is not None:
            self.wfile.write(body[:srv.break_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def leftovers(folder: Path, keep: str | None = None) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_download_is_verified_and_then_reused(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    path = fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False,
                 size=len(PAYLOAD), sha256=SHA)
    assert path == tmp_path / "splits.mat" and path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path, keep="splits.mat") == [], "no .part or temporary file left"
    fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False, size=len(PAYLOAD),
          sha256=SHA)
    assert len(server.log) == 1, "an existing file is not downloaded again"


def test_real_splits_file_matches_the_registry(server, tmp_path):
    real = (require_shared_data() / "nyu_v2_splits" / "splits.mat").read_bytes()
    server.files["/indoor_seg_sup/splits.mat"] = real
    path = fetch("splits", tmp_path, url=f"{server.base}/indoor_seg_sup/splits.mat",
                 progress=True)
    assert path.read_bytes() == real
    assert REGISTRY["splits"].size == 2626 and REGISTRY["nyu_v2"].size == 2_972_037_809


def test_corrupted_file_is_rejected_and_deleted(server, tmp_path):
    bad = bytearray(PAYLOAD)
    bad[1234] ^= 0xFF
    server.files["/f.bin"] = bytes(bad)
    with pytest.raises(DataError) as err:
        fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False,
              size=len(PAYLOAD), sha256=SHA)
    msg = str(err.value)
    assert "SHA-256" in msg and "deleted" in msg and "\n" not in msg
    assert leftovers(tmp_path) == [], "nothing at the final path, no partial file"


def test_broken_transfer_is_resumed_with_a_range_request(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.break_after = 100_000
    path = fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False,
                 size=len(PAYLOAD), sha256=SHA, backoff=0.0)
    assert path.read_bytes() == PAYLOAD
    (first, second) = server.log
    assert first == ("/f.bin", None)
    # resumed where the .part file ended (the chunk being read when the line broke is lost)
    start = int(second[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 100_000
    assert leftovers(tmp_path, keep="splits.mat") == []


def test_broken_transfer_is_resumed_by_the_next_call(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.break_after = 140_000
    with pytest.raises(DataError, match="run again to resume") as err:
        fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False,
              size=len(PAYLOAD), sha256=SHA, retries=0)
    assert "\n" not in str(err.value)
    part = tmp_path / "splits.mat.part"
    kept = part.stat().st_size
    assert 0 < kept <= 140_000 and not (tmp_path / "splits.mat").exists()
    path = fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False,
                 size=len(PAYLOAD), sha256=SHA, retries=0)
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert server.log[-1] == ("/f.bin", f"bytes={kept}-")


def test_server_without_range_support_starts_over(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.break_after = 50_000
    server.ranges = False
    path = fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False,
                 size=len(PAYLOAD), sha256=SHA, backoff=0.0)
    assert path.read_bytes() == PAYLOAD


def test_size_mismatch_is_rejected(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    with pytest.raises(DataError, match="300,000 bytes but the file has 300,001") as err:
        fetch("splits", tmp_path, url=f"{server.base}/f.bin", progress=False,
              size=len(PAYLOAD) + 1, sha256=None)
    assert "\n" not in str(err.value)
    assert leftovers(tmp_path) == []


def test_unpublished_hash_is_recorded_then_checked(server, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "nyu_v2", dataclasses.replace(REGISTRY["nyu_v2"],
                                                                size=len(PAYLOAD)))
    server.files["/v2.mat"] = PAYLOAD
    path = fetch("nyu_v2", tmp_path, url=f"{server.base}/v2.mat", progress=False)
    assert path.name == "nyu_depth_v2_labeled.mat"
    rec = read_records(tmp_path)["nyu_depth_v2_labeled.mat"]
    assert rec == {"sha256": SHA, "size": len(PAYLOAD), "url": f"{server.base}/v2.mat"}
    # a later download of the same name must match the recorded hash
    path.unlink()
    other = bytearray(PAYLOAD)
    other[0] ^= 1
    server.files["/v2.mat"] = bytes(other)
    with pytest.raises(DataError, match="does not match"):
        fetch("nyu_v2", tmp_path, url=f"{server.base}/v2.mat", progress=False)
    assert not path.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_one_line_with_advice(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/nyu_depth_v2_labeled.mat"
    with pytest.raises(DataError) as err:
        fetch("nyu_v2", tmp_path, url=url, progress=False)
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("connection refused", url, str(tmp_path / "nyu_depth_v2_labeled.mat"),
                 "data.urls.nyu_v2", "manually"):
        assert part in msg, msg
    assert leftovers(tmp_path) == []


def test_http_error_and_unknown_address(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        fetch("splits", tmp_path, url=f"{server.base}/missing", progress=False)
    with pytest.raises(DataError, match="data.urls.nyu_v1") as err:
        fetch("nyu_v1", tmp_path, progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="data.urls.nope"):
        download.check_urls({"nope": "http://x"})


def test_existing_file_of_the_wrong_size_is_refused(tmp_path):
    (tmp_path / "splits.mat").write_bytes(b"x" * 10)
    with pytest.raises(DataError, match="delete it"):
        fetch("splits", tmp_path, progress=False)


# -- the NYU source and the data module --------------------------------------------------------
def small_v2(tmp_path: Path) -> tuple[bytes, bytes]:
    """A 4-frame NYU V2 labeled file and its splits.mat (frames 1-3 train, 4 test), as bytes."""
    import scipy.io
    from nyu_files import write_nyu_v2

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    depths = [np.full((480, 640), 1.0 + i, np.float32) for i in range(4)]
    src = write_nyu_v2(tmp_path / "src.mat", images, depths, depths, ["a_1", "a_1", "b_2", "c_3"])
    scipy.io.savemat(tmp_path / "src_splits.mat", {"trainNdxs": np.array([[1], [2], [3]]),
                                                   "testNdxs": np.array([[4]])})
    return src.read_bytes(), (tmp_path / "src_splits.mat").read_bytes()


@pytest.fixture
def nyu_server(server, tmp_path, monkeypatch) -> FileServer:
    """The server holding a small V2 file at /v2.mat and its splits at /splits.mat, the
    registry's sizes and hashes set to theirs."""
    v2, splits = small_v2(tmp_path)
    server.files["/v2.mat"] = v2
    server.files["/splits.mat"] = splits
    monkeypatch.setitem(REGISTRY, "nyu_v2", dataclasses.replace(REGISTRY["nyu_v2"], size=len(v2)))
    monkeypatch.setitem(REGISTRY, "splits", dataclasses.replace(
        REGISTRY["splits"], size=len(splits), sha256=hashlib.sha256(splits).hexdigest()))
    return server


def test_nyu_source_downloads_a_missing_file(nyu_server, tmp_path):
    from depth_lightning.data.nyu import NYULabeled

    urls = {"nyu_v2": f"{nyu_server.base}/v2.mat", "splits": f"{nyu_server.base}/splits.mat"}
    path = tmp_path / "data" / "mine.mat"
    ds = NYULabeled(path, download=True, urls=urls)
    assert path.read_bytes() == nyu_server.files["/v2.mat"]
    assert [p for p, _ in nyu_server.log] == ["/v2.mat"], "splits.mat only when asked for"
    assert len(ds) == 4 and ds.version == "v2" and ds.name == "mine"
    np.testing.assert_array_equal(ds[2]["depth"], np.full((480, 640), 3.0, np.float32))
    tr, te = ds.official_split()
    assert tr.tolist() == [0, 1, 2] and te.tolist() == [3]
    assert (tmp_path / "data" / "splits.mat").read_bytes() == nyu_server.files["/splits.mat"]
    NYULabeled(path, download=True, urls=urls).official_split()
    assert len(nyu_server.log) == 2, "present files are not fetched again"
    other = tmp_path / "elsewhere" / "s.mat"
    tr, _ = NYULabeled(path, download=True, urls=urls, split_file=other).official_split()
    assert other.is_file() and tr.tolist() == [0, 1, 2], "fetched to data.split.file"


def test_nyu_source_download_failures_are_one_line(tmp_path):
    from depth_lightning.data.nyu import NYULabeled

    url = f"http://127.0.0.1:{free_port()}/v2.mat"
    with pytest.raises(DataError, match="connection refused") as err:
        NYULabeled(tmp_path / "v2.mat", download=True, urls={"nyu_v2": url})
    assert "\n" not in str(err.value) and not (tmp_path / "v2.mat").exists()
    with pytest.raises(DataError, match="data.urls.nyu_v1"):
        NYULabeled(tmp_path / "v1.mat", version="v1", download=True)
    with pytest.raises(DataError, match="data.urls.nope: unknown file"):
        NYULabeled(tmp_path / "v2.mat", download=True, urls={"nope": url})


def test_prepare_data_downloads_missing_nyu_v2_files(nyu_server, tmp_path):
    from conftest import compose

    from depth_lightning.core.plugins import build

    data_dir = tmp_path / "data"

    def module(*overrides):
        cfg = compose("train", "data=nyu_v2", f"paths.data_dir={data_dir}",
                      f"data.split.file={data_dir / 'splits.mat'}", "data.num_workers=0",
                      "data.batch_size=2", "data.cache_workers=1", *overrides)
        return build(cfg.data, "data")

    with pytest.raises(DataError, match="data.download=true"):
        module().prepare_data()
    assert nyu_server.log == []
    dm = module("data.download=true", f"data.urls.nyu_v2='{nyu_server.base}/v2.mat'",
                f"data.urls.splits='{nyu_server.base}/splits.mat'")
    dm.prepare_data()
    assert (data_dir / "nyu_depth_v2_labeled.mat").read_bytes() == nyu_server.files["/v2.mat"]
    dm.setup("fit")
    assert dm.train_idx.tolist() == [0, 1, 2] and dm.val_idx.tolist() == [3]
    assert (data_dir / "splits.mat").read_bytes() == nyu_server.files["/splits.mat"]
    n = len(nyu_server.log)
    again = module("data.download=true", f"data.urls.nyu_v2='{nyu_server.base}/v2.mat'")
    again.prepare_data()
    again.setup("fit")
    assert len(nyu_server.log) == n, "present files are not fetched again"
    assert again.cache.root == dm.cache.root
