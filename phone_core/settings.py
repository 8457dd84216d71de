"""All configuration, read once from the environment (prefix ``PHONE_``).

Nothing else in the code base reads environment variables: settings objects are passed
into constructors. Every field is listed in the README with its default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)
PRIVATE_DIR = 0o700  # the data dir and every directory in it
PRIVATE_FILE = 0o600  # every file in it
# What this process creates from now on is private whatever the umask it inherited: set
# by the entry points (cli.main) and for the child processes (rclone, the web app).
PRIVATE_UMASK = 0o077


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing, else tighten it to 0600."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700, or tighten it to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR:
        try:
            path.chmod(PRIVATE_DIR)
        except PermissionError:  # not ours: say so rather than refuse to start
            log.warning("cannot make %s private (mode 0700): not its owner", path)


VENDOR_ENV_PREFIX = "PHONE_VENDOR_"
# PHONE_VENDOR_<NAME>_<FIELD>: one vendor's value for a headless install (wins over the
# Sources page). <NAME> is the adapter's name in capitals (e.g. PROSPEO).
VENDOR_ENV_FIELDS = (
    "API_KEY",
    "BASE_URL",
    "ENABLED",
    "ORDER",
    "LOOKUP_COST",
    "FOUND_COST",
    "FAILED_COST",
    "RATE_PER_SEC",
    "CONCURRENCY",
    "TIMEOUT_SEC",
)


def _vendor_env(keys: bool) -> dict[str, dict[str, str]]:
    """The PHONE_VENDOR_<NAME>_<FIELD> variables: {name: {field: value}} (lower case);
    ``keys`` picks the API keys alone, else every other field."""
    out: dict[str, dict[str, str]] = {}
    for var, value in os.environ.items():
        if not var.startswith(VENDOR_ENV_PREFIX):
            continue
        rest = var[len(VENDOR_ENV_PREFIX) :]
        for fld in VENDOR_ENV_FIELDS:
            if rest.endswith("_" + fld) and len(rest) > len(fld) + 1:
                if (fld == "API_KEY") == keys:
                    name = rest[: -len(fld) - 1].lower()
                    out.setdefault(name, {})[fld.lower()] = value
                break
    return out


def _vendor_keys_env() -> dict[str, SecretStr]:
    return {name: SecretStr(v["api_key"]) for name, v in _vendor_env(True).items()}


def _vendor_values_env() -> dict[str, dict[str, str]]:
    return _vendor_env(False)


class Settings(BaseSettings):
    """One install of the product. ``data_dir`` holds every piece of local state."""

    model_config = SettingsConfigDict(env_prefix="PHONE_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None  # default: sqlite file under data_dir
    dbos_database_url: str | None = None  # default: sqlite file under data_dir
    executor_id: str = "local"
    app_version: str = "phone-enrich-1"
    queue_concurrency: int = Field(default=4, ge=1)  # runs per worker process at once
    queue_polling_interval_sec: float = 0.1
    # Whether the web app, the API and `submit --wait` may run batches here (the first on
    # a data dir becomes the worker). False: they only submit, and `phone-enrich worker`
    # processes run the batches (several processes of each role on one PostgreSQL + S3).
    runs_batches: bool = True

    # S3: empty endpoint + embedded=True starts `rclone serve s3` under data_dir/s3.
    s3_embedded: bool = True
    s3_endpoint_url: str | None = None
    s3_port: int = 9345
    s3_bucket: str = "phone-enrich"
    s3_prefix: str = "phone"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    presign_ttl_sec: int = 900

    # Engine
    waterfall: list[str] = ["directory", "lantern"]
    wave_size: int = Field(default=1000, ge=1)
    cache_ttl_days: int = Field(default=90, ge=0)
    cache_scope: Literal["organisation", "user"] = "organisation"
    # Suppression (do-not-call) lists: "flag" returns a listed phone marked (dnc columns),
    # "withhold" does not return it and charges nothing for the record.
    dnc_mode: Literal["flag", "withhold"] = "flag"
    default_region: str = "US"

    # Prices per source: credits per record sent (lookup) and per phone found.
    directory_lookup_cost: int = Field(default=0, ge=0)
    directory_found_cost: int = Field(default=1, ge=0)
    lantern_lookup_cost: int = Field(default=0, ge=0)
    lantern_found_cost: int = Field(default=1, ge=0)
    lantern_failed_cost: int = Field(default=0, ge=0)

    # Lantern-compatible upstream (issue 3). Disabled until a base URL is set.
    lantern_enabled: bool = True
    lantern_base_url: str | None = None
    lantern_api_key: SecretStr | None = None
    lantern_connect_timeout_sec: float = 3.0
    lantern_read_timeout_sec: float = 10.0
    lantern_concurrency: int = Field(default=10, ge=1)
    lantern_rate_per_sec: float = Field(default=50.0, gt=0)
    lantern_max_attempts: int = Field(default=4, ge=1)
    lantern_backoff_base_sec: float = 0.5
    lantern_backoff_max_sec: float = 20.0
    lantern_breaker_failures: int = Field(default=8, ge=1)
    lantern_breaker_pause_sec: float = 10.0
    lantern_max_body_bytes: int = 65536

    # Vendor sources (issue 12): configured on the Sources page, stored in the state DB with
    # their API keys encrypted by this Fernet key (default: generated once in
    # data_dir/secrets.key, 0600; set it when several machines share one state DB).
    secrets_key: SecretStr | None = None
    # How long a process reuses the sources it built before reading the configuration
    # again (a change on the Sources page reaches new waves of running workers this late).
    sources_refresh_sec: float = Field(default=5.0, ge=0)
    # PHONE_VENDOR_<NAME>_API_KEY and PHONE_VENDOR_<NAME>_<FIELD> (see VENDOR_ENV_FIELDS),
    # read from the environment; they win over the Sources page.
    vendor_keys: dict[str, SecretStr] = Field(default_factory=_vendor_keys_env)
    vendor_values: dict[str, dict[str, str]] = Field(default_factory=_vendor_values_env)

    # Web app / API
    app_port: int = 8501
    # `serve` loads a demo directory and grants the admin demo credits, only on an empty
    # install; `make run` turns it on, production leaves it off.
    demo_seed: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_rate_per_minute: int = Field(default=120, ge=1)
    # Upload limits, the same on every path (web app, CLI, reference-data loader).
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)  # a lead list
    upload_max_rows: int = Field(default=200_000, ge=1)  # runs of 1000 are made from it
    directory_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)  # a reference directory
    directory_max_rows: int = Field(default=2_000_000, ge=1)
    # Largest API request body: 16 MiB, a little above the largest valid one (1000 records,
    # every field at its limit, 4 UTF-8 bytes per character: 12.9 MB; see api/limits.py).
    api_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Failed API-key attempts: this many per window per client address and per key id,
    # then 429; each attempt during the lockout lengthens it, up to the maximum.
    api_auth_max_failures: int = Field(default=10, ge=1)
    api_auth_window_sec: float = Field(default=300.0, gt=0)
    api_auth_max_lockout_sec: float = Field(default=3600.0, gt=0)
    # The enriched XLSX adds 6 columns and Excel stops at 16,384.
    upload_max_columns: int = Field(default=1_000, ge=1, le=16_378)
    # What an XLSX may expand to once unzipped (its XML is streamed, so this bounds time).
    xlsx_max_uncompressed_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    # Web-app sessions: a sign-in lasts this long at most (the cookie, and server-side).
    session_hours: float = Field(default=12.0, gt=0, le=24 * 90)
    # Wrong passwords: this many per window per username (and per client address when
    # the web app sees one), then sign-in is refused for a delay that grows with each try.
    web_auth_max_failures: int = Field(default=5, ge=1)
    web_auth_window_sec: float = Field(default=300.0, gt=0)
    web_auth_max_lockout_sec: float = Field(default=3600.0, gt=0)
    # Notifications when a batch ends (issue 10): a webhook per user, delivered from the
    # outbox by the worker process, signed with the user's secret.
    notify_timeout_sec: float = Field(default=5.0, gt=0)  # each delivery attempt
    # Retried until this many attempts or until ``webhook_retry_hours`` after the event,
    # whichever comes first; the wait grows x4 after each failure, up to the maximum.
    notify_max_attempts: int = Field(default=30, ge=1)
    notify_backoff_base_sec: float = Field(default=15.0, ge=0)  # x4 after each failure
    notify_backoff_max_sec: float = Field(default=3600.0, gt=0)
    webhook_retry_hours: float = Field(default=24.0, gt=0, le=24 * 7)
    notify_poll_sec: float = Field(default=1.0, gt=0)  # how often the outbox is looked at
    # Webhook URLs resolving to loopback, private or link-local addresses are refused
    # unless this is on (tests; an install whose chat server is on the private network).
    notify_allow_private: bool = False
    # The same switch under the name issue 13 gives it (either one allows).
    webhook_allow_private: bool = False
    # Retention (issue 13): how many days personal data is kept; None (the default) keeps
    # it. Run outputs (the stored files), run records (their personal fields are redacted,
    # ids, statuses and charges kept) and each user's person store. A run's files are
    # deleted at the latest when its records are redacted. The purge runs daily at
    # ``retention_cron`` (UTC) as a durable scheduled workflow on a worker.
    retain_outputs_days: int | None = Field(default=None, ge=1)
    retain_records_days: int | None = Field(default=None, ge=1)
    retain_persons_days: int | None = Field(default=None, ge=1)
    # The sources' measurements (``source_calls``: one row per record a source was asked
    # about, no personal data) are kept this long: the Sources page's figures and the
    # suggested order come from them; older rows only grow the table.
    retain_source_calls_days: int = Field(default=400, ge=1)
    retention_cron: str = "30 3 * * *"
    # Erasure: a pause between the rewrites of two runs' stored files (spares a busy S3).
    erasure_pause_sec: float = Field(default=0.0, ge=0, le=60)
    # The web app's address as users reach it, for the link in a notification;
    # default http://localhost:<app_port>.
    public_url: str = ""

    @property
    def allow_private_webhooks(self) -> bool:
        """``PHONE_WEBHOOK_ALLOW_PRIVATE`` or its older name ``PHONE_NOTIFY_ALLOW_PRIVATE``."""
        return self.webhook_allow_private or self.notify_allow_private

    @property
    def app_url(self) -> str:
        return (self.public_url or f"http://localhost:{self.app_port}").rstrip("/")

    @property
    def state_db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'state.sqlite').resolve()}"

    @property
    def system_db_url(self) -> str:
        if self.dbos_database_url:
            return self.dbos_database_url
        if self.database_url and self.database_url.startswith("postgresql"):
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dbos.sqlite').resolve()}"

    @property
    def s3_dir(self) -> Path:
        return (self.data_dir / "s3").resolve()

    def _sqlite_files(self) -> list[Path]:
        out = []
        for url in (self.state_db_url, self.system_db_url):
            if url.startswith("sqlite:///") and ":memory:" not in url:
                out.append(Path(url.removeprefix("sqlite:///").split("?", 1)[0]))
        return out

    def ensure_data_dir(self) -> Path:
        """The one place that creates the data dir: private to this account (0700) and
        kept so. An existing dir and the files directly in it are tightened (an install
        from before, or a copy); the SQLite files are created 0600 before any driver
        opens them, so their -wal/-shm/-journal files (which SQLite gives the database's
        mode) are private too."""
        private_dir(self.data_dir)
        with os.scandir(self.data_dir) as entries:
            for entry in entries:
                mode = entry.stat(follow_symlinks=False).st_mode
                with contextlib.suppress(OSError):  # gone meanwhile, or not ours
                    if stat.S_ISREG(mode) and stat.S_IMODE(mode) != PRIVATE_FILE:
                        os.chmod(entry.path, PRIVATE_FILE)
                    elif stat.S_ISDIR(mode) and stat.S_IMODE(mode) != PRIVATE_DIR:
                        os.chmod(entry.path, PRIVATE_DIR)
        for path in self._sqlite_files():
            if path.parent.is_dir():
                private_file(path)
        return self.data_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
