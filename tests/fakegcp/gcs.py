"""The one client of fake-gcs-server's JSON API: the harness (buckets and state objects) and the fake
provider's `google_storage_bucket` both talk through it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def gcs_call(base_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body or None) of one request; an HTTP error is a status, not an exception."""
    request = urllib.request.Request(
        f"{base_url}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def gcs_read(base_url: str, bucket: str, name: str) -> bytes:
    """An object's bytes (`alt=media`)."""
    quoted = urllib.request.quote(name, safe="")
    with urllib.request.urlopen(f"{base_url}/storage/v1/b/{bucket}/o/{quoted}?alt=media", timeout=30) as response:
        return bytes(response.read())


def gcs_write(base_url: str, bucket: str, name: str, data: bytes) -> None:
    """Upload an object's bytes (a simple media upload), replacing what is there."""
    quoted = urllib.request.quote(name, safe="")
    request = urllib.request.Request(
        f"{base_url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quoted}",
        method="POST",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def gcs_delete(base_url: str, bucket: str, name: str) -> None:
    quoted = urllib.request.quote(name, safe="")
    status, _ = gcs_call(base_url, "DELETE", f"/storage/v1/b/{bucket}/o/{quoted}")
    if status not in (200, 204, 404):
        raise RuntimeError(f"fake-gcs-server could not delete gs://{bucket}/{name}: HTTP {status}")
