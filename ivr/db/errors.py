"""The errors that mean "the database did not answer": callers fail open or retry on them."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import SQLAlchemyError

DB_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError, TimeoutError, ConnectionError)
