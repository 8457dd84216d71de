"""Issue 9, item 17 (seed): the demo directory and demo credits are ``make run``'s alone.

Found on the running product: ``phone-enrich serve`` on a production data dir loaded a
generated directory and granted the admin 500 credits. Now the seed needs the
``demo_seed`` setting (off by default; the Makefile's ``run`` target turns it on for its
own invocation) and, even then, an empty install.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from phone_core import credits, db, keys, launcher, users
from phone_core.inline import memory_runtime
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.conftest import make_settings
from tests.security.test_supervision import Serve

ROOT = Path(__file__).resolve().parents[2]


def _rt(tmp_path: Path, **overrides: object) -> Runtime:
    return memory_runtime(make_settings(tmp_path / "mem", waterfall=[], **overrides))


def _directory_rows(rt: Runtime) -> int:
    with rt.db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(db.directory)).scalar_one())


def _balance(rt: Runtime, user: str = "admin") -> int:
    with rt.db.connect() as conn:
        return credits.summarize(conn, user).balance


def test_off_by_default_even_on_an_empty_install(tmp_path: Path) -> None:
    assert Settings.model_fields["demo_seed"].default is False
    rt = _rt(tmp_path)
    try:
        assert not launcher.seed_demo(rt)
        assert _directory_rows(rt) == 0 and _balance(rt) == 0
    finally:
        rt.close()


def test_on_and_empty_seeds_once(tmp_path: Path) -> None:
    rt = _rt(tmp_path, demo_seed=True)
    try:
        assert launcher.install_is_empty(rt)
        assert launcher.seed_demo(rt)
        assert _directory_rows(rt) == 2000 and _balance(rt) == launcher.DEMO_CREDITS
        assert not launcher.seed_demo(rt)  # no longer empty: a restart seeds nothing more
        assert _balance(rt) == launcher.DEMO_CREDITS
    finally:
        rt.close()


def _grant(rt: Runtime) -> None:
    with rt.db.begin() as conn:
        credits.grant(conn, "ann", 10)


def _directory(rt: Runtime) -> None:
    from phone_core.directory_upload import load_bytes

    load_bytes(rt, b"linkedin,phone\np-1,(212) 555-0100\n", "d.csv", loaded_by="t")


def _api_key(rt: Runtime) -> None:
    with rt.db.begin() as conn:
        users.add(conn, "ann", "Ann")
        keys.create(conn, "ann")


@pytest.mark.parametrize("fill", [_grant, _directory, _api_key], ids=["grant", "dir", "key"])
def test_on_but_not_empty_seeds_nothing(tmp_path: Path, fill: Callable[[Runtime], None]) -> None:
    rt = _rt(tmp_path, demo_seed=True)
    try:
        fill(rt)
        rows = _directory_rows(rt)
        assert not launcher.install_is_empty(rt)
        assert not launcher.seed_demo(rt)
        assert _directory_rows(rt) == rows and _balance(rt) == 0
    finally:
        rt.close()


def test_make_run_turns_it_on_for_itself_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    assert re.search(r"PHONE_DEMO_SEED=\S*true\S* \$\(BIN\)/phone-enrich serve", recipe.group(1))
    assert "export PHONE_DEMO_SEED" not in makefile


@pytest.mark.integration
def test_serve_on_a_data_dir_without_the_setting_seeds_nothing(tmp_path: Path) -> None:
    serve = Serve(tmp_path)
    try:
        proc = serve.start()
        serve.wait_app(proc)
        banner = serve.log()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        serve.stop()
    assert "password:" in banner and "Demo:" not in banner
    engine = db.make_engine(f"sqlite:///{serve.data_dir.resolve() / 'state.sqlite'}")
    try:
        with engine.connect() as conn:
            for table in (db.directory, db.ledger):
                assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
    finally:
        engine.dispose()
