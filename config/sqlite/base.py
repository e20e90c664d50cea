"""Django's SQLite backend, with each closed connection kept for the next request.

Under ASGI Django runs a request's sync code on a thread of its own and closes the thread's
connection when the request ends; CONN_MAX_AGE cannot keep it, the thread is gone. A new SQLite
connection costs about 2 ms before its first row: connecting, registering Django's SQL functions,
the PRAGMAs, and SQLite reading the whole schema. Here closing hands the connection, rolled back,
to the next request instead. PostgreSQL has psycopg's pool for the same reason (DB_POOL_MAX_SIZE).

A kept connection is handed out only in the process that opened it (a forked Celery worker must not
share its parent's), only while the file it opened is still the one at NAME (the test runner
deletes and recreates its database), and never for an in-memory database, which Django already
keeps open.
"""

import os
import queue

from django.db.backends.sqlite3 import base

IDLE_CONNECTIONS = 8


def _file_identity(name) -> tuple[int, int] | None:
    try:
        status = os.stat(name)
    except OSError:
        return None
    return status.st_dev, status.st_ino


class DatabaseWrapper(base.DatabaseWrapper):
    # Per process and database file: (connection, identity of the file it opened). A child's copy
    # of its parent's entry is never used, nor closed.
    _idle: dict[tuple[int, str], queue.LifoQueue] = {}

    def _idle_connections(self) -> queue.LifoQueue:
        key = (os.getpid(), str(self.settings_dict["NAME"]))
        return self._idle.setdefault(key, queue.LifoQueue(IDLE_CONNECTIONS))

    def get_new_connection(self, conn_params):
        if self.is_in_memory_db():
            return super().get_new_connection(conn_params)
        identity = _file_identity(self.settings_dict["NAME"])
        idle = self._idle_connections()
        while True:
            try:
                connection, opened = idle.get_nowait()
            except queue.Empty:
                break
            if opened == identity:
                self._opened = opened
                return connection
            connection.close()
        connection = super().get_new_connection(conn_params)
        self._opened = _file_identity(self.settings_dict["NAME"])
        return connection

    def _close(self):
        connection = self.connection
        if connection is None or self.is_in_memory_db():
            return super()._close()
        with self.wrap_database_errors:
            if connection.in_transaction:
                connection.rollback()
            try:
                self._idle_connections().put_nowait((connection, self._opened))
            except queue.Full:
                connection.close()
