"""Bucket CORS, so a browser page on another origin may PUT to presigned URLs (S3 PutBucketCors).

SeaweedFS (``weed mini``/``weed s3``) answers every origin by default (``-s3.allowedOrigins``
defaults to ``*``); once a bucket has a CORS configuration, only its rules apply to that bucket.
AWS S3 and MinIO take the same request. The minio SDK has no public call for it, so the request
goes through the SDK's signed request path."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from xml.sax.saxutils import escape

from music_core.storage import ObjectStore


def cors_document(origins: Sequence[str], max_age: int = 3600) -> bytes:
    if not origins or any(not o.startswith(("http://", "https://")) or "*" in o for o in origins):
        raise ValueError("CORS origins look like http(s)://host[:port], no wildcards")
    rules = "".join(f"<AllowedOrigin>{escape(o.rstrip('/'))}</AllowedOrigin>" for o in origins)
    return (
        "<CORSConfiguration><CORSRule>" + rules + "<AllowedMethod>PUT</AllowedMethod>"
        "<AllowedHeader>content-type</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
        f"<MaxAgeSeconds>{int(max_age)}</MaxAgeSeconds></CORSRule></CORSConfiguration>"
    ).encode()


def put_bucket_cors(store: ObjectStore, origins: Sequence[str]) -> None:
    body = cors_document(origins)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - required by S3
    store.client._execute(  # noqa: SLF001 - the SDK's signed request path; no public method exists
        "PUT", store.bucket, body=body, headers={"Content-MD5": md5}, query_params={"cors": ""}
    )


def get_bucket_cors(store: ObjectStore) -> str | None:
    try:
        response = store.client._execute("GET", store.bucket, query_params={"cors": ""})  # noqa: SLF001
    except Exception as exc:  # noqa: BLE001 - S3Error NoSuchCORSConfiguration means none set
        if getattr(exc, "code", None) == "NoSuchCORSConfiguration":
            return None
        raise
    return response.data.decode()
