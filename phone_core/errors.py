"""The one error hierarchy of phone_core. Callers catch these, never library errors.

PhoneError
├── InputError            bad user input (file, mapping, request); message is shown as is
│   └── FileFormatError   an uploaded file that cannot be read as a table
├── InsufficientCredits   not enough available credits (HTTP 402): required, remaining
├── NotFound              no such run / key, or not the caller's (no existence leak)
├── StorageError          S3 could not be reached or refused
├── ExportError           one export file of a run cannot be built; the message says why
└── SourceError           a source could not answer for a record
    ├── RetryableSourceError   timeouts, 5xx, 429, resets: worth another try
    └── FatalSourceError       auth / vendor credits: stop calling for this run
"""

from __future__ import annotations


class PhoneError(Exception):
    """Base of every error raised on purpose by phone_core."""


class InputError(PhoneError):
    """The caller gave something unusable; the message is safe to show to a user."""


class FileFormatError(InputError):
    """An uploaded file could not be read as a table."""


class InsufficientCredits(PhoneError):
    def __init__(self, required: int, remaining: int, reason: str = "") -> None:
        self.required = required
        self.remaining = remaining
        msg = f"insufficient credits: {required} required, {remaining} available"
        super().__init__(f"{msg} ({reason})" if reason else msg)


class NotFound(PhoneError):
    """The thing does not exist or does not belong to the caller."""


# What a download of a run's files says once the retention purge has deleted them.
RETENTION_DELETED = (
    "this run's files were deleted under the data retention policy (its counts and "
    "charges are kept)"
)


class StorageError(PhoneError):
    """The object store failed."""


class ExportError(PhoneError):
    """An export file (e.g. the Excel workbook) cannot be built; the message is for users."""


class SourceError(PhoneError):
    def __init__(self, detail: str, message: str = "") -> None:
        self.detail = detail
        super().__init__(message or detail)


class RetryableSourceError(SourceError):
    def __init__(self, detail: str, message: str = "", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(detail, message)


class FatalSourceError(SourceError):
    """The source cannot serve any more records in this run (auth, vendor credits)."""


def redacted_trace(exc: BaseException) -> str:
    """The exception's type and stack, without its message: messages from parsers and
    drivers can carry cell values (personal data), so logs get this instead."""
    import traceback

    stack = "".join(traceback.format_tb(exc.__traceback__))
    return f"{type(exc).__name__}\n{stack}".rstrip()
