"""Download the NYU Depth files: verified, resumable, and atomic.

`fetch(name, data_dir)` gets one file of `REGISTRY` into `data_dir` through `pooch.retrieve`
(SHA-256 verification, atomic move into place) with `ResumableDownloader` as its downloader:
the bytes go into `<file>.part`, a broken transfer is resumed with an HTTP `Range` request
(within one call, and across calls: the `.part` file stays until the transfer completes), the
size is checked against the registry, and only then does pooch hash the file and move it to its
final name. A file whose SHA-256 is not published (NYU V2 labeled) has its hash recorded on first
download in `downloads.json` next to the data; a later download of the same file is checked
against it.

The NYU server is often slow or refuses connections: every failure is a one-line `DataError`
saying to download the file manually from its address and put it at the final path, or to set
`data.urls.<name>` to a mirror.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depth_lightning.core.files import write_text
from depth_lightning.errors import DataError

log = logging.getLogger(__name__)

RECORD_FILE = "downloads.json"
CHUNK = 1 << 16  # a broken transfer loses at most the chunk being read
TIMEOUT = (30.0, 120.0)  # (connect, read) seconds


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: `size` in bytes and `sha256` (hex) when known, else None."""

    name: str
    fname: str
    url: str | None
    size: int | None
    sha256: str | None
    page: str


REGISTRY: dict[str, RemoteFile] = {
    "nyu_v2": RemoteFile(
        name="nyu_v2",
        fname="nyu_depth_v2_labeled.mat",
        url="http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat",
        size=2_972_037_809,
        sha256=None,  # not published: recorded in downloads.json on first download
        page="https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html",
    ),
    "splits": RemoteFile(
        name="splits",
        fname="splits.mat",
        url="http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat",
        size=2_626,
        sha256="6e081404491a8bfba2f066beaa9713ef6046f9007aa5f799f2a350506a580cee",
        page="https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html",
    ),
    "nyu_v1": RemoteFile(
        name="nyu_v1",
        fname="nyu_depth_data_labeled.mat",
        url=None,  # no verified address: set data.urls.nyu_v1
        size=None,
        sha256=None,
        page="https://cs.nyu.edu/~silberman/datasets/nyu_depth_v1.html",
    ),
}


def check_urls(urls: dict[str, Any] | None) -> dict[str, str]:
    """`data.urls` without its unset (null) entries; unknown names are a DataError."""
    out = {}
    for key, value in (urls or {}).items():
        if key not in REGISTRY:
            raise DataError(f"data.urls.{key}: unknown file; choose among {sorted(REGISTRY)}")
        if value:
            out[key] = str(value)
    return out


def _human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


class TransferError(Exception):
    """A transfer that failed; `retryable` when the server answered and the body then broke
    (worth resuming), not when the connection or the request itself failed."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ResumableDownloader:
    """A pooch downloader that streams into `part` and resumes it with HTTP Range requests.

    Called by pooch as `downloader(url, output_file, pooch)`: when the transfer is complete and
    of the expected size, the `.part` file is renamed to `output_file` (pooch's temporary file,
    which pooch then verifies and moves to the final name). An attempt whose response began and
    then broke is retried `retries` times, each resuming where the file ends; a connection that
    fails before the server answered is not retried (the server is down or the address wrong).
    A completed transfer of the wrong size deletes the `.part` file and raises `DataError`.
    """

    def __init__(self, part: str | Path, size: int | None = None, progress: bool = True,
                 retries: int = 3, backoff: float = 1.0, timeout: Any = TIMEOUT) -> None:
        self.part = Path(part)
        self.size = size
        self.progress = progress
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.attempts: list[int] = []  # the offset each attempt started from

    def __call__(self, url: str, output_file: str, pooch: Any = None) -> None:
        for attempt in range(self.retries + 1):
            try:
                self._attempt(url)
                break
            except TransferError as e:
                if not e.retryable or attempt == self.retries:
                    raise
                done = self.part.stat().st_size if self.part.exists() else 0
                log.warning("%s: transfer broke at %s (%s); resuming", self.part.name,
                            _human(done), e)
                time.sleep(self.backoff * 2**attempt)
        have = self.part.stat().st_size
        if self.size is not None and have != self.size:
            self.part.unlink(missing_ok=True)
            raise DataError(f"{url}: the server sent {have:,} bytes but the file has "
                            f"{self.size:,}; deleted the partial download {self.part}")
        os.replace(self.part, output_file)

    def _save(self, response: Any, offset: int, total: int | None) -> int:
        """Write the response's body into the .part file from `offset`; the bytes received."""
        received = 0
        bar = _progress_bar(self.progress, total, offset, self.part.name)
        try:
            with open(self.part, "r+b" if offset else "wb") as fh:
                fh.seek(offset)
                fh.truncate()
                for chunk in response.iter_content(CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return received

    def _attempt(self, url: str) -> None:
        import requests

        offset = self.part.stat().st_size if self.part.exists() else 0
        if self.size is not None and offset > self.size:  # not a prefix of this file
            self.part.unlink()
            offset = 0
        if offset and offset == self.size:
            return  # complete already (a previous run stopped after the last byte)
        self.attempts.append(offset)
        headers = {"Accept-Encoding": "identity"}  # byte counts must match the file's
        if offset:
            headers["Range"] = f"bytes={offset}-"
        answered = False
        try:
            with requests.get(url, headers=headers, stream=True, timeout=self.timeout,
                              allow_redirects=True) as r:
                answered = True
                if r.status_code == 416:  # the .part file is not a prefix: start again
                    self.part.unlink()
                    raise TransferError("range not satisfiable, restarting", True)
                r.raise_for_status()
                if offset and r.status_code != 206:  # no Range support: full body again
                    log.warning("%s: the server does not resume transfers; starting over",
                                self.part.name)
                    offset = 0
                elif r.status_code == 206 and not _range_starts_at(r, offset):
                    self.part.unlink()
                    raise TransferError("server answered a different range, restarting", True)
                length = r.headers.get("Content-Length")
                total = offset + int(length) if length and length.isdigit() else self.size
                if self.size is not None and total is not None and total != self.size:
                    self.part.unlink(missing_ok=True)
                    raise DataError(f"{url}: the server reports {total:,} bytes but the file "
                                    f"has {self.size:,}; wrong file or address, download "
                                    "refused")
                received = self._save(r, offset, total)
                if total is not None and offset + received < total:
                    raise TransferError(f"connection closed after {offset + received:,} of "
                                        f"{total:,} bytes", True)
        except requests.exceptions.HTTPError as e:
            code = e.response.status_code if e.response is not None else "?"
            raise TransferError(f"HTTP {code}", False) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError) as e:
            raise TransferError(_reason(e), answered) from None
        except requests.exceptions.RequestException as e:
            raise TransferError(_reason(e), answered) from None


def _range_starts_at(response: Any, offset: int) -> bool:
    cr = response.headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
    try:
        return int(cr.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return False


def _reason(err: BaseException) -> str:
    """A short cause: 'connection refused', 'timed out', or the innermost message."""
    text = " ".join(str(err).split())
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "name or service not known" in low or "nodename nor servname" in low or \
            "failed to resolve" in low:
        return "host name not found"
    if "incompleteread" in low or "connection broken" in low or "prematurely" in low:
        return "connection broken"
    return text[:160] or type(err).__name__


class _ProgressBar:
    """A rich progress bar of bytes (rich is a dependency already; pooch's own bar needs tqdm)."""

    def __init__(self, total: int | None, initial: int, name: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn())
        self.progress.start()
        self.task = self.progress.add_task(name, total=total, completed=initial)

    def update(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def close(self) -> None:
        self.progress.stop()


def _progress_bar(enabled: bool, total: int | None, initial: int, name: str) -> Any:
    return _ProgressBar(total, initial, name) if enabled else None


# -- records of downloaded files --------------------------------------------------------------
def read_records(data_dir: str | Path) -> dict[str, dict]:
    """`downloads.json` of `data_dir`: file name -> {sha256, size, url}."""
    path = Path(data_dir) / RECORD_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("%s: unreadable (%s); ignoring it", path, e)
        return {}


def _write_record(data_dir: Path, fname: str, entry: dict) -> None:
    records = read_records(data_dir)
    records[fname] = entry
    write_text(data_dir / RECORD_FILE, json.dumps(records, indent=2, sort_keys=True) + "\n")


def _advice(spec: RemoteFile, url: str | None, dest: Path) -> str:
    where = url or spec.page
    return (f"download it manually from {where} and put it at {dest}, or set "
            f"data.urls.{spec.name}=<address of a mirror>")


# -- the fetcher ------------------------------------------------------------------------------
def _checked_existing(dest: Path, official: str, size: int | None) -> Path:
    """A file already in the data folder, if it has the size it should have."""
    have = dest.stat().st_size
    if size is not None and have != size:
        raise DataError(f"{dest}: has {have:,} bytes but {official} has {size:,} (an "
                        "incomplete manual download?); delete it to download it again")
    return dest


def _writable_folder(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{data_dir}: cannot create the data folder ({e.strerror})") from None
    if not os.access(data_dir, os.W_OK):
        raise DataError(f"{data_dir}: the data folder is not writable")


def _retrieve(spec: Any, url: str, dest: Path, known: str | None,
              downloader: ResumableDownloader) -> None:
    """pooch's retrieve of `url` into `dest` (checked against the SHA-256 `known`), its
    failures as one DataError each."""
    import pooch

    part = downloader.part
    pooch_log = pooch.get_logger()
    level = pooch_log.level
    # pooch's INFO lines repeat ours, and with no known hash advise pasting the hash into code:
    # here it is recorded in downloads.json instead.
    pooch_log.setLevel(logging.WARNING)
    try:
        pooch.retrieve(url, known_hash=f"sha256:{known}" if known else None, fname=dest.name,
                       path=dest.parent, downloader=downloader)
    except TransferError as e:
        kept = f"; {_human(part.stat().st_size)} kept in {part.name}, run again to resume" \
            if part.exists() and part.stat().st_size else ""
        raise DataError(f"cannot download {spec.fname} from {url} ({e}){kept}; the NYU server "
                        f"is often slow or down: {_advice(spec, url, dest)}") from None
    except ValueError as e:  # pooch: hash mismatch (it has deleted its temporary file)
        part.unlink(missing_ok=True)
        if "hash" not in str(e).lower():
            raise
        raise DataError(f"{url}: SHA-256 of the downloaded {spec.fname} does not match "
                        f"{known} (corrupt transfer or a different file); deleted the "
                        f"download; {_advice(spec, url, dest)}") from None
    except OSError as e:
        raise DataError(f"{dest}: cannot write the download ({e.strerror or e})") from None
    finally:
        pooch_log.setLevel(level)


def fetch(name: str, data_dir: str | Path, url: str | None = None, progress: bool = True, *,
          fname: str | None = None, retries: int = 3, backoff: float = 1.0,
          size: int | None = None, sha256: str | None = None) -> Path:
    """Download registry file `name` into `data_dir` (as `fname`, default the official name)
    unless it is already there; return its path.

    `url` replaces the registry's address (`data.urls.<name>`); `size` and `sha256` replace the
    registry's checks (tests). The final file appears only once complete and verified. Raises
    `DataError` with one line on any failure.
    """
    if name not in REGISTRY:
        raise DataError(f"unknown download {name!r}; choose among {sorted(REGISTRY)}")
    spec = REGISTRY[name]
    size = spec.size if size is None else size
    sha256 = spec.sha256 if sha256 is None else sha256
    data_dir = Path(data_dir).expanduser()
    dest = data_dir / (fname or spec.fname)
    url = url or spec.url
    if dest.is_file():
        return _checked_existing(dest, spec.fname, size)
    if not url:
        raise DataError(f"{spec.fname}: no download address is known; "
                        f"{_advice(spec, None, dest)}")
    _writable_folder(data_dir)
    known = sha256 or read_records(data_dir).get(dest.name, {}).get("sha256")
    log.info("downloading %s (%s) from %s to %s", spec.fname, _human(size), url, dest)
    _retrieve(spec, url, dest, known, ResumableDownloader(
        dest.with_name(dest.name + ".part"), size=size, progress=progress, retries=retries,
        backoff=backoff))
    import pooch

    if not known:
        digest = pooch.file_hash(str(dest), alg="sha256")
        _write_record(data_dir, dest.name, {"sha256": digest, "size": dest.stat().st_size,
                                            "url": url})
        log.info("%s: SHA-256 %s recorded in %s", dest.name, digest, data_dir / RECORD_FILE)
    return dest
