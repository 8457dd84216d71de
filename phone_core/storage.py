"""Object storage: the ``ObjectStore`` protocol, S3 through boto3, and an in-memory double.

One code path for AWS and any S3-compatible endpoint (the embedded ``rclone serve s3`` of
``s3server``); the in-memory store serves the fast test tier and anything that must run
without a server. Objects are addressed by key; ``uri`` and ``key_of`` translate to and
from the ``s3://bucket/key`` URIs stored on runs.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from phone_core.errors import NotFound, StorageError
from phone_core.models import CSV_TYPE
from phone_core.s3server import S3Credentials, embedded_credentials
from phone_core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@runtime_checkable
class ObjectStore(Protocol):
    """Where run outputs live: one bucket, keys under a prefix."""

    bucket: str

    def key_for(self, run_id: str, name: str) -> str: ...

    def uri(self, key: str) -> str: ...

    def key_of(self, uri: str) -> str: ...

    def put(self, key: str, body: bytes, content_type: str = CSV_TYPE) -> str: ...

    def put_file(self, key: str, body: BinaryIO, content_type: str = CSV_TYPE) -> str:
        """Write the object from a seekable file, read from its start in chunks (a big
        batch file is never held in memory whole)."""
        ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool:
        """Whether the object is there (without reading it)."""
        ...

    def presign(self, key: str, ttl: int | None = None) -> str: ...

    def delete(self, key: str) -> bool:
        """Remove the object if it is there; whether it was (idempotent)."""
        ...


class _Addressing:
    """Keys and URIs: the same for every implementation."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key_for(self, run_id: str, name: str) -> str:
        return f"{self.prefix}/runs/{run_id}/{name}" if self.prefix else f"runs/{run_id}/{name}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def key_of(self, uri: str) -> str:
        head = f"s3://{self.bucket}/"
        if not uri.startswith(head):
            raise NotFound("that object is not in this product's bucket")
        return uri[len(head) :]


def output_key(store: ObjectStore, result_uri: str, name: str) -> str:
    """The key of the run output ``name`` beside the run's stored results URI."""
    return f"{store.key_of(result_uri).rsplit('/', 1)[0]}/{name}"


def credentials(settings: Settings) -> S3Credentials:
    """The configured endpoint and keys, or the embedded server's generated ones."""
    if settings.s3_endpoint_url or not settings.s3_embedded:
        return S3Credentials(
            endpoint_url=settings.s3_endpoint_url,
            access_key=settings.s3_access_key.get_secret_value()
            if settings.s3_access_key
            else None,
            secret_key=settings.s3_secret_key.get_secret_value()
            if settings.s3_secret_key
            else None,
        )
    return embedded_credentials(settings)


class S3ObjectStore(_Addressing):
    """Run outputs in an S3 bucket through boto3."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        super().__init__(settings.s3_bucket, settings.s3_prefix)
        self.presign_ttl = settings.presign_ttl_sec
        creds = credentials(settings)
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=creds.endpoint_url,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            region_name=settings.s3_region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )
        self._bucket_ready = False

    def ensure_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._bucket_ready:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StorageError(f"cannot create bucket {self.bucket}: {code}") from exc
            except BotoCoreError as exc:
                raise StorageError(f"cannot create bucket {self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 is not reachable: {exc}") from exc
        self._bucket_ready = True

    def put(self, key: str, body: bytes, content_type: str = CSV_TYPE) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        self.ensure_bucket()
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not write {key}: {type(exc).__name__}") from exc
        return self.uri(key)

    def put_file(self, key: str, body: BinaryIO, content_type: str = CSV_TYPE) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        self.ensure_bucket()
        body.seek(0)
        try:
            # put_object streams a seekable file (signed, then sent in chunks); one
            # request, like put, so a retried write replaces the object whole.
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not write {key}: {type(exc).__name__}") from exc
        return self.uri(key)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj: Any = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(obj["Body"].read())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise NotFound(f"{key} is not written yet") from exc
            raise StorageError(f"could not read {key}: {code}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key}: {type(exc).__name__}") from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                return False
            raise StorageError(f"could not look up {key}: {code}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not look up {key}: {type(exc).__name__}") from exc
        return True

    def delete(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.exists(key):
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not delete {key}: {type(exc).__name__}") from exc
        return True

    def presign(self, key: str, ttl: int | None = None) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=ttl or self.presign_ttl,
            )
        )


class InMemoryObjectStore(_Addressing):
    """A dict behind the same protocol: the fast test tier's S3."""

    def __init__(self, bucket: str = "phone-enrich", prefix: str = "phone") -> None:
        super().__init__(bucket, prefix)
        self.objects: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes, content_type: str = CSV_TYPE) -> str:
        with self._lock:
            self.objects[key] = (bytes(body), content_type)
        return self.uri(key)

    def put_file(self, key: str, body: BinaryIO, content_type: str = CSV_TYPE) -> str:
        body.seek(0)
        return self.put(key, body.read(), content_type)

    def get(self, key: str) -> bytes:
        with self._lock:
            found = self.objects.get(key)
        if found is None:
            raise NotFound(f"{key} is not written yet")
        return found[0]

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self.objects

    def presign(self, key: str, ttl: int | None = None) -> str:
        return f"memory://{self.bucket}/{key}"

    def delete(self, key: str) -> bool:
        with self._lock:
            return self.objects.pop(key, None) is not None


def batch_key(store: ObjectStore, batch_id: str, version: int, name: str) -> str:
    """The key of version ``version`` of a batch's merged file ``name``:
    ``<prefix>/batches/<batch id>/v<n>/<name>``, beside the runs' own files."""
    runs_key = store.key_for("-", name)  # "<prefix>/runs/-/<name>"
    prefix = runs_key[: -len(f"runs/-/{name}")]
    return f"{prefix}batches/{batch_id}/v{version}/{name}"
