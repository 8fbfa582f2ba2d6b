"""SQLAlchemy persistence: ORM tables and implementations of the core's ports."""
