"""Persistence: the only package that imports SQLAlchemy. It returns core records, never rows."""
