"""S3 through boto3 against the embedded rclone server, which checks signatures."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from phone_core.errors import NotFound
from phone_core.runtime import Runtime
from phone_core.s3server import embedded_credentials


def test_rclone_roundtrip_presign_and_signature_check(rt: Runtime) -> None:
    store = rt.store
    key = store.key_for("run-1", "results.csv")
    uri = store.put(key, b"id,phone_number\n1,+12125550100\n")
    assert uri == "s3://phone-enrich/phone/runs/run-1/results.csv"
    assert store.get(store.key_of(uri)) == b"id,phone_number\n1,+12125550100\n"
    with urllib.request.urlopen(store.presign(key, ttl=60), timeout=5) as resp:
        assert resp.read().startswith(b"id,phone_number")
    with pytest.raises(NotFound):
        store.get(store.key_for("run-1", "missing.csv"))
    # the data is on disk under the data dir
    assert (rt.settings.s3_dir / "phone-enrich" / key).is_file()

    creds = embedded_credentials(rt.settings)
    forged = boto3.client(
        "s3",
        endpoint_url=creds.endpoint_url,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    with pytest.raises(ClientError) as err:
        forged.get_object(Bucket="phone-enrich", Key=key)
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert (rt.settings.data_dir / "s3-keys.json").stat().st_mode & 0o077 == 0


def test_a_file_is_written_from_disk_and_read_back_whole(rt: Runtime, tmp_path: Path) -> None:
    """A batch's big merged file is streamed from a temporary file (``put_file``), not held
    whole in memory: 12 MiB, past one 8 MiB chunk, written from a position other than the
    start, reads back byte for byte; ``exists`` answers without reading the object."""
    store = rt.store
    key = store.key_for("run-2", "enriched.xlsx")
    assert not store.exists(key)
    body = bytes(range(256)) * (12 * 4096)
    path = tmp_path / "big.bin"
    path.write_bytes(body)
    with path.open("rb") as fh:
        fh.seek(1000)  # put_file reads from the start whatever the position
        store.put_file(key, fh, "application/octet-stream")
    assert store.exists(key)
    assert store.get(key) == body
    assert store.delete(key) and not store.exists(key)
