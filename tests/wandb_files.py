"""Reading an offline W&B run from its files: `run-<id>.wandb` is a LevelDB-style log (32 KiB
blocks, records of checksum, length and type, after a 7-byte `:W&B` header) of the protobuf
`Record`s the run sent. No wandb API reads it back, so the tests do."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    """The run's records, in order (wandb.proto.wandb_internal_pb2.Record)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, chunk, out = 7, b"", []
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            break
        chunk += data[pos:pos + length]
        pos += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


def read_run(path: Path) -> dict:
    """What the run holds: its run record (group, name, job type, tags), the config and the
    summary as they stand at the end, and the kinds of record it wrote."""
    run, config, summary, kinds = None, {}, {}, []
    for r in records(path):
        kind = r.WhichOneof("record_type")
        kinds.append(kind)
        if kind == "run":
            run = r.run
            config.update({u.key: json.loads(u.value_json) for u in r.run.config.update})
        elif kind == "config":
            config.update({u.key: json.loads(u.value_json) for u in r.config.update})
        elif kind == "summary":
            for u in r.summary.update:
                summary[u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
    return {"group": run.run_group, "name": run.display_name, "job_type": run.job_type,
            "tags": list(run.tags), "config": config, "summary": summary, "kinds": kinds}
