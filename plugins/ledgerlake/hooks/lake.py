"""The lake's S3 settings from an Airflow AWS connection (`ledgerlake_s3` by default).

The connection uses the amazon provider's fields: login = access key id, password = secret access key,
extra = {"endpoint_url": ..., "region_name": ..., "aws_session_token": ...}. A connection without keys
falls back to boto3's own chain (instance role, environment). Bucket, prefix and server-side encryption
come from the extra too (`bucket`, `prefix`, `sse`, `sse_kms_key_id`), or from LEDGERLAKE_BUCKET etc.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseHook

from ledgerlake.lake import S3Settings

DEFAULT_AWS_CONN_ID = "ledgerlake_s3"


class LakeHook(BaseHook):
    conn_name_attr = "aws_conn_id"
    default_conn_name = DEFAULT_AWS_CONN_ID
    conn_type = "aws"
    hook_name = "ledgerlake lake (S3)"

    def __init__(self, aws_conn_id: str = DEFAULT_AWS_CONN_ID) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id

    def settings(self) -> S3Settings:
        conn = self.get_connection(self.aws_conn_id)
        extra: dict[str, Any] = conn.extra_dejson or {}
        endpoint = extra.get("endpoint_url") or (extra.get("service_config", {}).get("s3", {}) or {}).get(
            "endpoint_url"
        )
        return S3Settings(
            bucket=extra.get("bucket") or os.environ.get("LEDGERLAKE_BUCKET", "ledgerlake"),
            endpoint_url=endpoint or None,
            region=extra.get("region_name") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            access_key_id=conn.login or None,
            secret_access_key=conn.password or None,
            session_token=extra.get("aws_session_token"),
            prefix=(extra.get("prefix") or os.environ.get("LEDGERLAKE_PREFIX", "")).strip("/"),
            sse=extra.get("sse") or os.environ.get("LEDGERLAKE_SSE") or None,
            sse_kms_key_id=extra.get("sse_kms_key_id") or os.environ.get("LEDGERLAKE_SSE_KMS_KEY_ID") or None,
        )
