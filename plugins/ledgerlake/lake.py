"""The lake on S3: object names, plain object I/O, and manifests.

Layout (include/contracts/unified-row.md): raw pages, Parquet datasets, one manifest per (venue, account,
interval) written last. Readers trust manifests only, so a crashed run leaves nothing half-visible.
Plain Python over boto3; knows nothing of Airflow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledgerlake.interval import Interval


class LakeError(RuntimeError):
    """An S3 operation failed; the message names the bucket and key, never credentials."""


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None  # None: real AWS
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    prefix: str = ""  # optional key prefix inside the bucket, no leading or trailing slash
    sse: str | None = None  # None, "AES256" (SSE-S3) or "aws:kms" (SSE-KMS)
    sse_kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.sse not in (None, "AES256", "aws:kms"):
            raise ValueError(f"unknown server-side encryption {self.sse!r}: use AES256 or aws:kms")
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise ValueError("sse_kms_key_id is set but sse is not aws:kms")


def part(name: str, value: str) -> str:
    """One Hive-style path segment; '/' inside a value would split the partition, so it is refused."""
    if not value or "/" in value:
        raise ValueError(f"bad partition value for {name}: {value!r}")
    return f"{name}={value}"


def partition_prefix(dataset: str, venue: str, account: str) -> str:
    return f"{dataset}/{part('venue', venue)}/{part('account', account)}"


def raw_page_key(venue: str, account: str, interval: Interval, page_no: int) -> str:
    day = interval.start.strftime("%Y-%m-%d")
    return f"{partition_prefix('raw', venue, account)}/date={day}/{interval.id}/page-{page_no:06d}.json.gz"


def data_file_key(dataset: str, venue: str, account: str, interval: Interval, day: str, file_no: int) -> str:
    return f"{partition_prefix(dataset, venue, account)}/date={day}/{interval.id}-{file_no:04d}.parquet"


def manifest_key(venue: str, account: str, interval: Interval) -> str:
    return f"{partition_prefix('manifests', venue, account)}/{interval.id}.json"


def validation_key(venue: str, account: str, interval: Interval) -> str:
    return f"{partition_prefix('validation', venue, account)}/{interval.id}.json"


def quarantine_prefix(venue: str, account: str, interval: Interval) -> str:
    return f"{partition_prefix('quarantine', venue, account)}/{interval.id}/"


@dataclass(frozen=True)
class ManifestFile:
    key: str
    dataset: str  # "raw", "ledger", "snapshots/balances", "snapshots/positions"
    rows: int  # rows for Parquet files, records for raw pages
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    venue: str
    account: str
    interval_start: str
    interval_end: str
    files: tuple[ManifestFile, ...]
    row_counts: dict[str, int]
    written_at: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def interval(self) -> Interval:
        return Interval.parse(self.interval_start, self.interval_end)

    def files_of(self, dataset: str) -> list[ManifestFile]:
        return [f for f in self.files if f.dataset == dataset]

    def to_json(self) -> bytes:
        body = asdict(self)
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        body["files"] = tuple(ManifestFile(**f) for f in body["files"])
        return cls(**body)

    @classmethod
    def build(
        cls,
        venue: str,
        account: str,
        interval: Interval,
        files: list[ManifestFile],
        summary: dict[str, Any] | None = None,
    ) -> Manifest:
        counts: dict[str, int] = {}
        for f in files:
            counts[f.dataset] = counts.get(f.dataset, 0) + f.rows
        return cls(
            venue=venue,
            account=account,
            interval_start=interval.start.isoformat(),
            interval_end=interval.end.isoformat(),
            files=tuple(sorted(files, key=lambda f: f.key)),
            row_counts=counts,
            written_at=datetime.now(UTC).isoformat(),
            summary=summary or {},
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Lake:
    """Objects in one bucket (under an optional prefix). All keys given to it are relative to the prefix."""

    def __init__(self, settings: S3Settings) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            aws_session_token=settings.session_token,
            config=Config(
                retries={"max_attempts": 8, "mode": "adaptive"},
                # moto and MinIO want path-style addressing; real AWS accepts it too.
                s3={"addressing_style": "path"} if settings.endpoint_url else {},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    @property
    def client(self) -> Any:
        return self._client

    def _full(self, key: str) -> str:
        return f"{self.settings.prefix}/{key}" if self.settings.prefix else key

    def _relative(self, full_key: str) -> str:
        p = self.settings.prefix
        return full_key[len(p) + 1 :] if p and full_key.startswith(p + "/") else full_key

    def uri(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{self._full(key)}"

    def _sse_args(self) -> dict[str, str]:
        args: dict[str, str] = {}
        if self.settings.sse:
            args["ServerSideEncryption"] = self.settings.sse
        if self.settings.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.settings.sse_kms_key_id
        return args

    def _fail(self, action: str, key: str, exc: Exception) -> LakeError:
        return LakeError(f"S3 {action} s3://{self.settings.bucket}/{self._full(key)} failed: {exc}")

    def ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.settings.bucket)
        except Exception:
            try:
                self._client.create_bucket(Bucket=self.settings.bucket)
            except Exception as exc:
                raise self._fail("create bucket", "", exc) from None

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ManifestFile:
        try:
            self._client.put_object(
                Bucket=self.settings.bucket,
                Key=self._full(key),
                Body=data,
                ContentType=content_type,
                **self._sse_args(),
            )
        except Exception as exc:
            raise self._fail("put", key, exc) from None
        return ManifestFile(key=key, dataset="", rows=0, bytes=len(data), sha256=sha256_hex(data))

    # Multipart uploads: an object written part by part while it is still being produced; it appears (or
    # replaces the old one) only when completed, so readers never see half of it.

    def start_multipart(self, key: str) -> str:
        try:
            answer = self._client.create_multipart_upload(
                Bucket=self.settings.bucket, Key=self._full(key), **self._sse_args()
            )
        except Exception as exc:
            raise self._fail("start multipart upload of", key, exc) from None
        upload_id: str = answer["UploadId"]
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Upload part `number` (1-based, at least 5 MiB unless it is the last); returns its ETag."""
        try:
            answer = self._client.upload_part(
                Bucket=self.settings.bucket, Key=self._full(key), UploadId=upload_id, PartNumber=number, Body=data
            )
        except Exception as exc:
            raise self._fail(f"upload part {number} of", key, exc) from None
        etag: str = answer["ETag"]
        return etag

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"ETag": etag, "PartNumber": i} for i, etag in enumerate(etags, 1)]
        try:
            self._client.complete_multipart_upload(
                Bucket=self.settings.bucket, Key=self._full(key), UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except Exception as exc:
            raise self._fail("complete multipart upload of", key, exc) from None

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.settings.bucket, Key=self._full(key), UploadId=upload_id)
        except Exception as exc:
            raise self._fail("abort multipart upload of", key, exc) from None

    def get_bytes(self, key: str) -> bytes:
        try:
            body: bytes = self._client.get_object(Bucket=self.settings.bucket, Key=self._full(key))["Body"].read()
            return body
        except Exception as exc:
            raise self._fail("get", key, exc) from None

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.settings.bucket, Key=self._full(key))
            return True
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail("head", key, exc) from None

    def head(self, key: str) -> dict[str, Any]:
        try:
            return dict(self._client.head_object(Bucket=self.settings.bucket, Key=self._full(key)))
        except Exception as exc:
            raise self._fail("head", key, exc) from None

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=self._full(prefix)):
                for obj in page.get("Contents", []):
                    yield self._relative(obj["Key"])
        except Exception as exc:
            raise self._fail("list", prefix, exc) from None

    def delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self._full(k)} for k in keys[i : i + 1000]]
            try:
                self._client.delete_objects(Bucket=self.settings.bucket, Delete={"Objects": batch})
            except Exception as exc:
                raise self._fail("delete", keys[i], exc) from None

    # Manifests -------------------------------------------------------------------------------------

    def write_manifest(self, manifest: Manifest) -> str:
        """Write the manifest (last), then drop the interval's objects it does not list (a re-run's leftovers)."""
        interval = manifest.interval
        key = manifest_key(manifest.venue, manifest.account, interval)
        self.put_bytes(key, manifest.to_json(), "application/json")
        listed = {f.key for f in manifest.files}
        stale = [k for k in self.interval_object_keys(manifest.venue, manifest.account, interval) if k not in listed]
        if stale:
            self.delete_keys(stale)
        return key

    def read_manifest(self, venue: str, account: str, interval: Interval) -> Manifest | None:
        key = manifest_key(venue, account, interval)
        if not self.exists(key):
            return None
        return Manifest.from_json(self.get_bytes(key))

    def manifest_sha256(self, venue: str, account: str, interval: Interval) -> str | None:
        key = manifest_key(venue, account, interval)
        return sha256_hex(self.get_bytes(key)) if self.exists(key) else None

    def interval_object_keys(self, venue: str, account: str, interval: Interval) -> list[str]:
        """Every raw page and data file this (venue, account, interval) has in the lake."""
        from ledgerlake.schema import DATASETS

        keys: list[str] = []
        days = [d.start.strftime("%Y-%m-%d") for d in interval.days()]
        for dataset in ("raw", *DATASETS):
            for day in days[:1] if dataset == "raw" else days:
                prefix = f"{partition_prefix(dataset, venue, account)}/date={day}/{interval.id}"
                keys.extend(self.list_keys(prefix))
        return keys


# Validation records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationRecord:
    """What the quality gate decided for one (venue, account, interval). The load trusts a partition only
    when `passed` and `manifest_sha256` equals the sha256 of the manifest in the lake now."""

    venue: str
    account: str
    interval_start: str
    interval_end: str
    manifest_sha256: str
    passed: bool
    summary: str
    validated_at: str
    failures: tuple[str, ...] = ()
    data_docs_uri: str | None = None


def write_validation(lake: Lake, record: ValidationRecord) -> str:
    interval = Interval.parse(record.interval_start, record.interval_end)
    key = validation_key(record.venue, record.account, interval)
    lake.put_bytes(key, json.dumps(asdict(record), indent=2, sort_keys=True).encode(), "application/json")
    return key


def read_validation(lake: Lake, venue: str, account: str, interval: Interval) -> ValidationRecord | None:
    key = validation_key(venue, account, interval)
    if not lake.exists(key):
        return None
    body = json.loads(lake.get_bytes(key))
    body["failures"] = tuple(body.get("failures", ()))
    return ValidationRecord(**body)
