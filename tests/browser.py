"""A headless chromium driven over the DevTools protocol, for screenshots of the web demo.

`screenshot(url, ready_js, out)` opens `url`, waits until the JavaScript expression `ready_js` is
true (the page has rendered what the test waits for) and writes a PNG. Needs a chromium binary
(Debian: `apt-get install chromium`) and aiohttp; `find_chromium()` is None without one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _drive(debug_port: int, url: str, ready_js: str, timeout: float) -> bytes:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + timeout
        while True:  # the browser takes a moment to listen
            try:
                async with http.get(f"http://127.0.0.1:{debug_port}/json/list") as r:
                    pages = [p for p in await r.json() if p["type"] == "page"]
                    break
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 1_000_000))

            async def call(method: str, **params) -> dict:
                n = next(ids)
                await ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    msg = json.loads((await ws.receive()).data)
                    if msg.get("id") == n:
                        return msg.get("result", {})

            await call("Page.navigate", url=url)
            while True:
                got = await call("Runtime.evaluate", expression=ready_js, returnByValue=True)
                if got.get("result", {}).get("value") is True:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the page never satisfied {ready_js!r}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # the 3D view draws after its file arrives
            shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            return base64.b64decode(shot["data"])


def screenshot(url: str, ready_js: str, out: Path, size: tuple[int, int] = (1280, 1400),
               timeout: float = 120.0) -> Path:
    """Write a PNG of `url` once `ready_js` holds."""
    port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [find_chromium(), "--headless=new", "--no-sandbox", "--use-angle=swiftshader",
             "--enable-unsafe-swiftshader",
             "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
             f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            png = asyncio.run(_drive(port, url, ready_js, timeout))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    out.write_bytes(png)
    return out
