"""Final losses of the W&B peer's offline runs, for bench_peers.py's check that every variant
computed the same thing.

    python read_wandb.py WANDB_DIR
    # prints {"runs": 15, "finals": {"tanh/0": [train_loss, test_loss], ...}, "points": 200}

An offline run keeps everything in its transaction log, wandb/offline-run-*/run-*.wandb (what
`wandb sync` would upload): W&B's LevelDB-style record log of protobuf ``Record`` messages.
wandb 0.31 reads it in its Go core only, so the log is read here: a 7-byte file header
(":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each with a 7-byte header
(crc32, length, type FULL/FIRST/MIDDLE/LAST). The run record's config gives the run's
activation and seed, its last history record with train_loss its final losses.
"""

import json
import struct
import sys
import zlib
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
HEADER = struct.Struct("<4sHB")  # ident, magic, version
CHUNK = struct.Struct("<IHB")  # crc32, length, type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path):
    """Yield the raw records of a W&B transaction log."""
    data = Path(path).read_bytes()
    ident, magic, version = HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        raise ValueError(f"{path}: not a W&B transaction log (header {ident!r} {magic:#x} {version})")
    pos, parts = HEADER.size, []
    while pos + CHUNK.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK.size:  # block trailer: padding
            pos += left
            continue
        crc, length, kind = CHUNK.unpack_from(data, pos)
        if length == 0 and kind == 0:  # zero padding at the end of a block or file
            pos += left
            continue
        body = data[pos + CHUNK.size : pos + CHUNK.size + length]
        if len(body) < length:
            break  # a truncated last chunk (run still being written): ignore it
        if zlib.crc32(bytes([kind]) + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"{path}: bad checksum at byte {pos}")
        pos += CHUNK.size + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            parts = [body]
        elif kind == MIDDLE:
            parts.append(body)
        elif kind == LAST:
            parts.append(body)
            yield b"".join(parts)
            parts = []


def _key(item):
    return item.key or "/".join(item.nested_key)


def final_losses(log):
    """(activation, seed, train_loss, test_loss, points of the train_loss curve) of one
    offline run."""
    config, last, points = {}, None, 0
    for raw in records(log):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        cfg = rec.run.config if kind == "run" else rec.config if kind == "config" else None
        if cfg is not None:
            for item in cfg.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            items = {_key(i): i.value_json for i in rec.history.item}
            if "train_loss" in items:
                last = items
                points += 1
    if last is None or "activation" not in config or "seed" not in config:
        raise ValueError(f"{log}: no config or no train_loss history")

    def value(v):  # config values are stored as {"value": ...} in some versions
        return v["value"] if isinstance(v, dict) and "value" in v else v

    return (
        value(config["activation"]),
        int(value(config["seed"])),
        float(json.loads(last["train_loss"])),
        float(json.loads(last["test_loss"])),
        points,
    )


def main(argv):
    if len(argv) != 1:
        sys.exit("usage: python read_wandb.py WANDB_DIR")
    out, points = {}, 0
    logs = sorted(Path(argv[0]).glob("wandb/offline-run-*/run-*.wandb"))
    for log in logs:
        act, seed, train, test, n = final_losses(log)
        out[f"{act}/{seed}"] = [train, test]
        points = max(points, n)
    print(json.dumps({"runs": len(logs), "finals": out, "points": points}))


if __name__ == "__main__":
    main(sys.argv[1:])
