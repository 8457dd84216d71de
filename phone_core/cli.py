"""`phone-enrich`: submit and follow batches, manage credits and the directory, run workers.

Every command works standalone on the embedded defaults: it starts the local S3 server
when none is up for the data dir and, when it needs runs processed (``--wait``,
``worker``), becomes the worker unless another live process already is. Commands that
only read or write the state DB (``status`` without ``--wait``, ``credits``, ``users``,
``keys``) open just that: no S3 server, no DBOS, and none of their imports (the runtime,
the file readers and the engine are imported by the commands that use them), so they
answer in well under a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from phone_core import (
    audit,
    cli_accounts,
    cli_compliance,
    cli_privacy,
    cli_sources,
    run_views,
)
from phone_core.cli_common import get_runtime, out, shutdown, state_db
from phone_core.errors import InsufficientCredits, PhoneError, redacted_trace
from phone_core.models import OUTPUT_FILES, Run
from phone_core.settings import PRIVATE_UMASK, get_settings

if TYPE_CHECKING:
    from phone_core.runtime import Runtime

log = logging.getLogger("phone_core.cli")


def _run_summary(run: Run) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "state": run.state.value,
        "counts": run.counts.model_dump(),
        "credits_spent": run.credits_spent,
        "max_credits": run.max_credits,
        "result_path": run.result_path,
        "credits_csv_path": run.credits_csv_path,
        "notice": run.notice,
    }


def _parse_map(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise PhoneError(f"--map takes field=Column, got {pair!r}")
        mapping[field.strip()] = column.strip()
    return mapping


def wait_runs(rt: Runtime, user: str, run_ids: Sequence[str], timeout: float) -> list[Run]:
    deadline = time.monotonic() + timeout
    while True:
        with rt.db.connect() as conn:
            found = [run_views.load_run(conn, r, None) for r in run_ids]
        if all(r.state.finished for r in found):
            return found
        if time.monotonic() > deadline:
            raise PhoneError(f"timed out after {timeout:.0f}s; the runs go on in the background")
        time.sleep(0.2)


def cmd_submit(args: argparse.Namespace) -> int:
    from phone_core import ingest, service

    path = Path(args.file)
    if not path.is_file():
        raise PhoneError(f"no such file: {path}")
    upload = ingest.load_upload(
        path.read_bytes(),
        path.name,
        settings=get_settings(),
        overrides=_parse_map(args.map or []),
        sheet=args.sheet,
    )
    print(f"mapping: {json.dumps(upload.mapping)}", file=sys.stderr)
    for warning in upload.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:  # the pre-flight only: nothing is held, stored or queued
        report = ingest.dry_run(get_runtime(worker=False), args.user, upload, args.max_credits)
        out({"file": path.name, **report})
        return 0
    rt = get_runtime(worker=args.wait)
    accepted = service.submit_upload(
        rt,
        args.user,
        upload.rows,
        args.max_credits,
        source_rows=upload.source_rows,
        label=path.name,
        source_delimiter=upload.table.delimiter,
    )
    for acc in accepted:
        out(acc.model_dump())
    if args.wait:
        for run in wait_runs(rt, args.user, [a.run_id for a in accepted], args.timeout):
            out(_run_summary(run))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.wait:  # the runs must be processed: this process may become the worker
        rt = get_runtime(worker=True)
        run = wait_runs(rt, "", [args.run_id], args.timeout)[0]
    else:
        with state_db() as engine, engine.connect() as conn:
            run = run_views.load_run(conn, args.run_id, None)
    out(_run_summary(run))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from phone_core import service

    rt = get_runtime(worker=False)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (n for n, spec in OUTPUT_FILES.items() if spec.contract):
        data = service.download(rt, "", args.run_id, name, admin=True)
        (folder / name).write_bytes(data)
        print(folder / name)
    return 0


def cmd_directory(args: argparse.Namespace) -> int:
    from phone_core import directory_upload

    meter = _LoadMeter(sys.stderr)
    with state_db() as engine:  # a load needs neither the S3 server nor DBOS
        read, loaded = directory_upload.load_path(
            directory_upload.StateDb(engine, get_settings()),
            Path(args.file),
            loaded_by="cli",
            replace=not args.append,
            progress=meter,
            workers=args.workers or max(1, min(4, os.cpu_count() or 1)),
        )
    meter.done(read, loaded)
    out({"rows_read": read, "rows_loaded": loaded})
    return 0


class _LoadMeter:
    """A directory load's progress on stderr: a line that updates in place on a terminal,
    else a line every few seconds; then a last line with the totals."""

    EVERY = 5.0  # seconds between lines when stderr is not a terminal

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._start = self._last = time.monotonic()

    def __call__(self, rows: int, share: float) -> None:
        now = time.monotonic()
        if not self._tty and now - self._last < self.EVERY:
            return
        self._last = now
        line = f"directory: {rows:,} rows read ({share:.0%} of the file, {now - self._start:.0f} s)"
        self._stream.write(f"\r{line}" if self._tty else f"{line}\n")
        self._stream.flush()

    def done(self, read: int, loaded: int) -> None:
        took = time.monotonic() - self._start
        end = "\n" if self._tty else ""
        self._stream.write(
            f"{end}directory: {read:,} rows read, {loaded:,} loaded in {took:.1f} s\n"
        )
        self._stream.flush()


def cmd_worker(args: argparse.Namespace) -> int:
    settings = get_settings().model_copy(update={"runs_batches": True})  # its one job
    if args.executor_id:
        settings = settings.model_copy(update={"executor_id": args.executor_id})
    rt = get_runtime(settings, worker=True)
    if not rt.is_worker:
        raise PhoneError(f"another process is already the worker {settings.executor_id!r} here")
    if args.recover:
        taken = rt.queue.recover(list(args.recover))
        print(f"recovering {taken} runs of {args.recover}", file=sys.stderr)
    print(f"worker {settings.executor_id} running; Ctrl-C to stop", file=sys.stderr)
    idle_since: float | None = None
    try:
        while True:
            time.sleep(0.5)
            if args.exit_when_idle:
                with rt.db.connect() as conn:
                    busy = any(not r.state.finished for r in run_views.load_runs(conn, None))
                    busy = busy or cli_privacy.erasures_running(conn)
                idle_since = None if busy else (idle_since or time.monotonic())
                if idle_since and time.monotonic() - idle_since > args.exit_when_idle:
                    return 0
    except KeyboardInterrupt:
        return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from phone_core.launcher import serve

    return serve(get_settings())


def cmd_api(args: argparse.Namespace) -> int:
    from phone_core.api.app import serve as serve_api

    serve_api(get_settings(), workers=args.workers)
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from phone_core.launcher import serve_web

    settings = get_settings()
    if args.port:
        settings = settings.model_copy(update={"app_port": args.port})
    return serve_web(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    from phone_core.demo import write_examples

    for p in write_examples(Path(args.out)):
        print(p)
    return 0


EXIT_USAGE = 64  # a command line that does not parse (1-3 are the command's own outcomes)


class _Parser(argparse.ArgumentParser):
    """argparse's own exit code for a bad command line is 2, which here means "not enough
    credits": give usage errors their own code instead."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="phone-enrich", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("submit", help="submit a CSV/XLSX lead list")
    s.add_argument("file")
    s.add_argument("--user", required=True)
    s.add_argument("--max-credits", type=int, required=True)
    s.add_argument("--map", action="append", metavar="FIELD=COLUMN")
    s.add_argument(
        "--sheet",
        metavar="NAME",
        help="the workbook sheet to read (default: the first with a table)",
    )
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="print the mapping and pre-flight as JSON; spend nothing",
    )
    s.add_argument("--wait", action="store_true", help="process here if needed and wait")
    s.add_argument("--timeout", type=float, default=3600)
    s.set_defaults(func=cmd_submit)

    s = sub.add_parser("status", help="a run's state and counts")
    s.add_argument("run_id")
    s.add_argument("--wait", action="store_true")
    s.add_argument("--timeout", type=float, default=3600)
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("download", help="download results.csv and credits.csv")
    s.add_argument("run_id")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_download)

    d = sub.add_parser("directory", help="reference directory").add_subparsers(
        dest="action", required=True
    )
    g = d.add_parser("load")
    g.add_argument("file")
    g.add_argument(
        "--append",
        action="store_true",
        help="add to the directory instead of replacing it: rows with the identity of a row "
        "of the file (LinkedIn, else email, else name + website, else name + company) are "
        "replaced by the file's",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes that check the phone numbers (default: the CPUs, up to 4)",
    )
    g.set_defaults(func=cmd_directory)

    s = sub.add_parser("worker", help="a worker process (scale-out)")
    s.add_argument("--executor-id")
    s.add_argument("--recover", nargs="*", metavar="EXECUTOR", help="take over dead executors")
    s.add_argument("--exit-when-idle", type=float, metavar="SECONDS")
    s.set_defaults(func=cmd_worker)

    cli_accounts.register(sub)  # credits, users, keys
    cli_compliance.register(sub)  # suppress, audit
    cli_sources.register(sub)
    cli_privacy.register(sub)  # erase, erase-receipt, retention (issue 13)

    sub.add_parser("serve", help="the whole product (make run)").set_defaults(func=cmd_serve)
    s = sub.add_parser("api", help="the HTTP API only")
    s.add_argument(
        "--workers", type=int, default=1, help="API processes (uvicorn workers) on the one port"
    )
    s.set_defaults(func=cmd_api)
    s = sub.add_parser("web", help="the web app only (scale-out: one per port)")
    s.add_argument("--port", type=int, default=0, help="default: PHONE_APP_PORT (8501)")
    s.set_defaults(func=cmd_web)
    s = sub.add_parser("demo", help="write the example files")
    s.add_argument("--out", default="examples")
    s.set_defaults(func=cmd_demo)
    return p


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # run the cleanup below: stop the S3 server, release the lock


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # every file this process writes is private (data dir, downloads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    try:
        with audit.acting(audit.cli_actor(), via="cli"):
            return int(args.func(args))
    except InsufficientCredits as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PhoneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback for a person at a terminal
        # The type only: messages from parsers and drivers can carry cell values.
        log.debug("unexpected error: %s", redacted_trace(exc))
        print(f"error: unexpected {type(exc).__name__}", file=sys.stderr)
        return 3
    finally:
        shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
