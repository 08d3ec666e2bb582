"""Alembic's environment: migrate the engine handed over, or the configured URL."""

from __future__ import annotations

from alembic import context

from contactcenter.db import Base, import_models, make_engine

import_models()
config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        context.run_migrations()


run()
