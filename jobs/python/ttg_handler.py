"""TTG handler adapter for Python: protocol v1 (docs/PROTOCOL.md), standard library only.

    from ttg_handler import serve, Unrecoverable

    def run(chunk):           # {"jobId", "chunkId", "start", "end", "totalParams", "args", "attempt"}
        if chunk["args"].get("broken"):
            raise Unrecoverable("bad input")   # dead-lettered at once
        return {"sum": sum(range(chunk["start"], chunk["end"]))}   # any JSON value

    serve(run)

A returned value is the chunk's result; a raised exception fails the chunk (retried with backoff,
then bisected); `Unrecoverable` dead-letters it at once. `progress(done)` reports how many
parameters of the running chunk are done. Anything the handler prints goes to the worker's log
(stdout is kept for the protocol). The process exits when its stdin closes, and within half a
second of its worker's death, even in the middle of a chunk.
"""

import json
import os
import sys
import threading
import time
import traceback

__all__ = ["serve", "progress", "Unrecoverable", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1


class Unrecoverable(Exception):
    """Raise it to dead-letter the chunk at once: no retry, no bisection."""


_out = None
_out_lock = threading.Lock()


def _send(message):
    line = json.dumps(message, allow_nan=False, separators=(",", ":")) + "\n"
    with _out_lock:
        _out.write(line.encode("utf-8"))
        _out.flush()


def progress(done):
    """Reports that `done` parameters of the running chunk are computed."""
    _send({"progress": done})


def _take_stdout():
    """Keeps fd 1 for the protocol; print() and C code writing to fd 1 go to stderr instead."""
    global _out
    _out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _exit_with_worker():
    """Exits within half a second of the death of the worker that started it, even mid-chunk."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _reason(error):
    if isinstance(error, Unrecoverable):
        return str(error) or "Unrecoverable"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def serve(fn):
    """Answers the chunks TTG sends with `fn(chunk)`, one at a time, until stdin closes.

    Chunks are read on the main thread (a handler may use signals and thread-bound libraries);
    a daemon thread only watches for the worker's death.
    """
    _take_stdout()
    threading.Thread(target=_exit_with_worker, daemon=True).start()
    _send({"ttg": PROTOCOL_VERSION, "ready": True})
    for raw in sys.stdin.buffer:
        try:
            chunk = json.loads(raw)["chunk"]
        except (ValueError, KeyError, TypeError) as error:
            _send({"error": f"Unreadable chunk line: {error}", "unrecoverable": True})
            continue
        try:
            result = fn(chunk)
            line = json.dumps({"result": result}, allow_nan=False, separators=(",", ":"))
        except Exception as error:  # noqa: BLE001 - every failure is the chunk's outcome
            traceback.print_exc(file=sys.stderr)
            _send({"error": _reason(error), "unrecoverable": isinstance(error, Unrecoverable)})
            continue
        with _out_lock:
            _out.write(line.encode("utf-8") + b"\n")
            _out.flush()
