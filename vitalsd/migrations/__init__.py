"""Alembic migrations, shipped inside the package (run by `vitalsd.store.engine.migrate`)."""
