"""The process behind ``LocalGcsServer``: ``gcp-storage-emulator`` plus the preconditions it lacks.

``python -m bananaflow.devstack.gcs_emulator --port P [--data-dir D]`` serves the emulator's
JSON API on 127.0.0.1. The emulator ignores ``ifGenerationMatch``, which is exactly what
keeps two workers from both claiming a key on Cloud Storage, so this entry point enforces it
the way Cloud Storage does (HTTP 412, reason ``conditionNotMet``) on uploads (simple,
multipart and resumable) and deletes. Requests are served one at a time, so a check and the
write that follows it cannot interleave with another writer's.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import urllib.parse
from collections.abc import Callable
from functools import partial
from http import HTTPStatus, server
from typing import Any

__all__ = ["PRECONDITION_FAILED", "main", "serve"]

#: Cloud Storage's JSON API answer to a precondition that does not hold (see
#: tests/fixtures/wire/gcs_412_condition_not_met.json for its provenance).
PRECONDITION_FAILED: dict[str, Any] = {
    "error": {
        "code": 412,
        "message": "At least one of the pre-conditions you specified did not hold.",
        "errors": [
            {
                "message": "At least one of the pre-conditions you specified did not hold.",
                "domain": "global",
                "reason": "conditionNotMet",
                "locationType": "header",
                "location": "If-Match",
            }
        ],
    }
}

Handler = Callable[..., Any]
#: Resumable uploads whose precondition is checked again when their last chunk arrives.
_PENDING: dict[str, tuple[str, str, int]] = {}


def _generation(storage: Any, bucket: str, name: str) -> int:
    """The live generation of ``bucket/name``, 0 when there is no such object."""
    from gcp_storage_emulator.exceptions import NotFound

    try:
        return int(storage.get_file_obj(bucket, name).get("generation") or 0)
    except NotFound:
        return 0


def _wanted(request: Any) -> int | None:
    values = request.query.get("ifGenerationMatch")
    return int(values[0]) if values else None


def _refuse(response: Any) -> None:
    response.status = HTTPStatus.PRECONDITION_FAILED
    response.json(PRECONDITION_FAILED)


def _upload_name(request: Any) -> str | None:
    if "name" in request.query:
        return str(request.query["name"][0])
    data = request.data
    if isinstance(data, dict):
        meta = data.get("meta", data)
        return str(meta["name"]) if isinstance(meta, dict) and meta.get("name") else None
    return None


def _guard_insert(original: Handler) -> Handler:
    def insert(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        wanted, bucket = _wanted(request), request.params["bucket_name"]
        name = _upload_name(request) if wanted is not None else None
        if wanted is not None and name is not None and _generation(storage, bucket, name) != wanted:
            return _refuse(response)
        result = original(request, response, storage, *args, **kwargs)
        location = response._headers.get("Location", "")
        upload_id = urllib.parse.parse_qs(urllib.parse.urlparse(location).query).get("upload_id")
        if wanted is not None and name is not None and upload_id:
            _PENDING[upload_id[-1]] = (bucket, name, wanted)
        return result

    return insert


def _guard_upload_partial(original: Handler) -> Handler:
    def upload_partial(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        upload_id = (request.query.get("upload_id") or [""])[-1]
        pending = _PENDING.get(upload_id)
        range_header = str(request.get_header("Content-Range") or "")
        last = pending is not None and not range_header.endswith("/*")
        if pending is not None and last and _generation(storage, pending[0], pending[1]) != pending[2]:
            _PENDING.pop(upload_id, None)
            return _refuse(response)
        result = original(request, response, storage, *args, **kwargs)
        if last:
            _PENDING.pop(upload_id, None)
        return result

    return upload_partial


def _guard_delete(original: Handler) -> Handler:
    def delete(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        wanted = _wanted(request)
        bucket, name = request.params["bucket_name"], request.params["object_id"]
        if wanted is not None and _generation(storage, bucket, name) != wanted:
            return _refuse(response)
        return original(request, response, storage, *args, **kwargs)

    return delete


def _install_preconditions() -> None:
    """Wrap the emulator's upload and delete handlers in its route table."""
    from gcp_storage_emulator import server as emulator
    from gcp_storage_emulator.handlers import objects

    wrapped = {
        objects.insert: _guard_insert(objects.insert),
        objects.upload_partial: _guard_upload_partial(objects.upload_partial),
        objects.delete: _guard_delete(objects.delete),
    }
    emulator.HANDLERS = tuple(
        (regex, {method: wrapped.get(handler, handler) for method, handler in handlers.items()})
        for regex, handlers in emulator.HANDLERS
    )
    objects.insert = wrapped[objects.insert]  # the router's own fallback for bare /b/.../o uploads


class _Server(server.HTTPServer):
    request_queue_size = 128  # many workers connect at once; the default 5 drops their SYNs
    allow_reuse_address = True


def serve(host: str, port: int, data_dir: str | None) -> None:
    """Serve until SIGTERM/SIGINT."""
    from gcp_storage_emulator.server import RequestHandler
    from gcp_storage_emulator.storage import Storage

    _install_preconditions()
    storage = Storage(use_memory_fs=data_dir is None, data_dir=data_dir)
    httpd = _Server((host, port), partial(RequestHandler, storage))

    def stop(*_: object) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        httpd.serve_forever(poll_interval=0.1)
    finally:
        httpd.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cloud Storage emulator with preconditions")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", default=None, help="keep objects here (default: in memory)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    serve(args.host, args.port, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
