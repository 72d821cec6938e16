#!/usr/bin/env python3
"""textstats: a hotmod process module written in Python with nothing but its
standard library.

The host starts it as textstats.process.json says and talks to it over stdin
and stdout in the process protocol's JSON mode (docs/process-protocol.md):
one JSON object per line. The first half of this file is the module, the
second the protocol; copy the second half to write a module of your own.

    hotmod invoke textstats count_words '{"text": "to be or not to be"}'
    -> {"chars": 18, "lines": 1, "unique": 4, "words": 6}

Started by hand (without HOTMOD_PROCESS in the environment), it says what it
is and exits with status 2.
"""

import collections
import json
import os
import re
import sys
import traceback

NAME = "textstats"
VERSION = "1.0.0"

WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


class ModuleError(Exception):
    """An error with one of hotmod's codes (bad_params, module_error, ...)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def bad_params(message):
    return ModuleError("bad_params", message)


def want_text(params, key):
    v = params.get(key)
    if v is None:
        raise bad_params(f'"{key}" is required (a string)')
    if not isinstance(v, str):
        raise bad_params(f'"{key}": want string, got {type_name(v)}')
    return v


def want_int(params, key, default, lo, hi):
    v = params.get(key)
    if v is None:
        return default
    # JSON mode keeps integers and floats apart: 3 is an int, 3.0 a float.
    # Like the Go SDK, accept a float with an integral value.
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad_params(f'"{key}": want integer, got {type_name(v)}')
    if not lo <= v <= hi:
        raise bad_params(f'"{key}" must be between {lo} and {hi}, got {v}')
    return v


def words_of(text):
    return WORD.findall(text)


# The methods: each takes the params (a dict) and returns the result (a
# dict), or raises ModuleError.


def count_words(params):
    text = want_text(params, "text")
    words = words_of(text)
    return {
        "words": len(words),
        "unique": len({w.lower() for w in words}),
        "lines": len(text.splitlines()),
        "chars": len(text),
    }


def top_words(params):
    text = want_text(params, "text")
    n = want_int(params, "n", 3, 1, 100)
    counts = collections.Counter(w.lower() for w in words_of(text))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return {"words": [{"word": w, "count": c} for w, c in ranked]}


def mean_word_length(params):
    text = want_text(params, "text")
    words = words_of(text)
    if not words:
        raise ModuleError("module_error", "the text has no words")
    return {"mean": sum(len(w) for w in words) / len(words), "words": len(words)}


def field(name, fid, typ, required=False, default=None, **extra):
    f = {"name": name, "id": fid, "type": typ}
    if required:
        f["required"] = True
    if default is not None:
        f["default"] = default
    f.update(extra)
    return f


def obj(*fields):
    return {"type": "object", "fields": list(fields)}


TEXT = obj(field("text", 1, "string", required=True))

# name -> (function, doc, params schema, result schema). The schemas go into
# the manifest, for hotmod's compatibility checks and `hotmod inspect`.
METHODS = {
    "count_words": (
        count_words,
        "counts the words, distinct words, lines and characters of a text",
        TEXT,
        obj(field("words", 1, "int64"), field("unique", 2, "int64"),
            field("lines", 3, "int64"), field("chars", 4, "int64")),
    ),
    "top_words": (
        top_words,
        "the n most frequent words (case-insensitive), most frequent first",
        obj(field("text", 1, "string", required=True), field("n", 2, "int64", default=3)),
        obj(field("words", 1, "array",
                  items=obj(field("word", 1, "string"), field("count", 2, "int64")))),
    ),
    "mean_word_length": (
        mean_word_length,
        "the mean length of the words of a text, a float",
        TEXT,
        obj(field("mean", 1, "float64"), field("words", 2, "int64")),
    ),
}


# ---------------------------------------------------------------------------
# The process protocol, JSON mode. Nothing above this line knows about it.

PROTOCOL_VERSION = 1
INT64 = (-(1 << 63), (1 << 63) - 1)


def manifest():
    return {
        "name": NAME,
        "version": VERSION,
        "sdk": "python-stdlib/1",
        "methods": [
            {"name": name, "doc": doc, "params": params, "result": result}
            for name, (_, doc, params, result) in sorted(METHODS.items())
        ],
    }


def type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def check_value(v, path):
    """Refuses what the value model cannot carry, before it is sent: the
    host would take it for a protocol error and replace this process."""
    if v is None or isinstance(v, (bool, str)):
        return
    if isinstance(v, int):
        if not INT64[0] <= v <= INT64[1]:
            raise ModuleError("module_error", f"{path}: {v} does not fit in int64")
    elif isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ModuleError("module_error", f"{path}: {v} cannot be sent as JSON")
    elif isinstance(v, list):
        for i, e in enumerate(v):
            check_value(e, f"{path}[{i}]")
    elif isinstance(v, dict):
        for k, e in v.items():
            if not isinstance(k, str):
                raise ModuleError("module_error", f"{path}: the key {k!r} is not a string")
            check_value(e, f"{path}.{k}")
    else:
        raise ModuleError("module_error", f"{path}: {type(v).__name__} is not in the value model")


def pick_version(offer):
    lo, _, hi = (offer or "1").partition("-")
    lo, hi = int(lo), int(hi or lo)
    if not lo <= PROTOCOL_VERSION <= hi:
        raise ValueError(f"the host offers protocol versions {lo}-{hi}; this module speaks {PROTOCOL_VERSION}")
    return PROTOCOL_VERSION


def serve():
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # print() goes to the host's log, not into the protocol

    def send(msg):
        out.write(json.dumps(msg, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode() + b"\n")
        out.flush()

    def error(id_, code, message):
        send({"t": "error", "id": id_, "error": {"code": code, "message": message}})

    try:
        version = pick_version(os.environ.get("HOTMOD_PROCESS_VERSIONS"))
        offered = os.environ.get("HOTMOD_PROCESS_ENCODINGS", "json").split(",")
        if "json" not in offered:
            raise ValueError(f"the host offers the encodings {offered}; this module speaks json")
    except ValueError as e:
        send({"hotmod": "process", "error": f"{NAME}@{VERSION}: {e}"})
        return 1
    send({"hotmod": "process", "version": version, "encoding": "json", "manifest": manifest()})

    # One request at a time: a call runs to its end before the next line is
    # read, so a cancel can only come too late (the host then kills this
    # process after its grace period), and heartbeats are answered between
    # calls. For parallel calls, give the version a pool of processes.
    for line in sys.stdin.buffer:
        msg = json.loads(line)
        kind, id_ = msg.get("t"), msg.get("id")
        if kind == "call":
            entry = METHODS.get(msg.get("method"))
            if entry is None:
                error(id_, "unknown_method",
                      f"module {NAME} has no method {msg.get('method')!r} (it has: {', '.join(sorted(METHODS))})")
                continue
            try:
                result = entry[0](msg.get("params") or {})
                check_value(result, "result")
            except ModuleError as e:
                error(id_, e.code, e.message)
                continue
            except Exception as e:  # a bug: the host reports it as a panic
                traceback.print_exc()
                error(id_, "panic", f"{NAME}.{msg.get('method')} raised {type(e).__name__}: {e}")
                continue
            send({"t": "result", "id": id_, "result": result})
        elif kind in ("ping", "init", "check"):
            send({"t": "result", "id": id_})
        elif kind == "close":
            send({"t": "result", "id": id_})
            return 0
        elif kind == "cancel":
            pass  # the call it names has finished: calls run one at a time
        else:
            error(id_, "internal", f"unknown message type {kind!r}: this module speaks protocol version {PROTOCOL_VERSION}")
    return 0  # stdin ended: the host is gone


def main():
    if os.environ.get("HOTMOD_PROCESS") is None:
        print(f"{NAME}@{VERSION} is a hotmod process module (methods: {' '.join(sorted(METHODS))}).\n"
              "Drop textstats.process.json and this file into the directory `hotmod serve` watches.",
              file=sys.stderr)
        return 2
    return serve()


if __name__ == "__main__":
    sys.exit(main())
