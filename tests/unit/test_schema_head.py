"""db.SCHEMA_HEAD names Alembic's head: a database at it skips the migration machinery."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from phone_core import db


def test_schema_head_is_alembics_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_heads() == [db.SCHEMA_HEAD]


def test_a_database_at_head_is_not_migrated_again(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        assert not db._at_head(engine)  # new: no version table
        db.migrate(engine)
        assert db._at_head(engine)
    finally:
        engine.dispose()
