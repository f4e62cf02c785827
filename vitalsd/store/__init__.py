"""Storage: SQLAlchemy 2.0 async models, the engine factory, migrations and events."""
