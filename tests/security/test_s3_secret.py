"""Issue 9, item 7: the embedded S3 keys never appear on a command line, nor in a log.

Any local account can read every process's command line (``ps``); with the key pair it
could overwrite another user's results. The keys reach rclone through its environment
(readable only by this account); signed requests still work and a wrong secret, or none,
is refused (so rclone did take the keys from the environment: without them it would
serve anonymously).
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from phone_core.s3server import LocalS3Server, embedded_credentials
from phone_core.settings import Settings
from phone_core.storage import S3ObjectStore
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[LocalS3Server]:
    caplog.set_level(logging.DEBUG)
    srv = LocalS3Server(Settings(data_dir=tmp_path / "data", s3_port=free_port()))
    assert srv.start()
    yield srv
    srv.stop()


def all_command_lines() -> list[bytes]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                out.append((proc / "cmdline").read_bytes())
            except OSError:  # gone meanwhile
                continue
    return out


def _client(settings: Settings, secret: str) -> object:
    creds = embedded_credentials(settings)
    return boto3.client(
        "s3",
        endpoint_url=creds.endpoint_url,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def test_keys_are_on_no_command_line_and_in_no_log(
    server: LocalS3Server, caplog: pytest.LogCaptureFixture
) -> None:
    settings = server.settings
    creds = embedded_credentials(settings)
    assert creds.access_key and creds.secret_key
    assert server.process is not None
    own = (Path("/proc") / str(server.process.pid) / "cmdline").read_bytes()
    assert b"serve\x00s3" in own  # it is the server we look at
    lines = all_command_lines()
    assert len(lines) > 2
    for secret in (creds.access_key, creds.secret_key):
        assert not any(secret.encode() in line for line in lines)
        assert secret not in caplog.text
        assert secret not in (settings.data_dir / "s3.log").read_text()


def test_signed_requests_work_and_wrong_or_no_secret_is_refused(server: LocalS3Server) -> None:
    settings = server.settings
    store = S3ObjectStore(settings)
    key = store.key_for("run-1", "results.csv")
    store.put(key, b"id,phone_number\n")
    assert store.get(key) == b"id,phone_number\n"

    forged = _client(settings, "not-the-secret")
    with pytest.raises(ClientError) as err:
        forged.put_object(Bucket=settings.s3_bucket, Key=key, Body=b"overwritten")  # type: ignore[attr-defined]
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    anonymous = f"{embedded_credentials(settings).endpoint_url}/{settings.s3_bucket}/{key}"
    for method, body in (("GET", None), ("PUT", b"overwritten")):
        request = urllib.request.Request(anonymous, data=body, method=method)
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(request, timeout=5)
        denied.value.close()
        assert denied.value.code in (400, 403)  # rclone: UnsupportedAlgorithm (no signature)
    assert store.get(key) == b"id,phone_number\n"
