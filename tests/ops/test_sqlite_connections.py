"""The SQLite backend hands a closed connection to the next request (config/sqlite/base.py)."""

import sqlite3
import threading

import pytest
from django.db.utils import ConnectionHandler

from config.sqlite import base


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """A wrapper factory for one SQLite file of its own (not the test database), with its own
    idle list."""
    name = tmp_path / "kept.sqlite3"
    handler = ConnectionHandler({"default": {"ENGINE": "config.sqlite", "NAME": name}})
    base.DatabaseWrapper._idle.clear()
    with django_db_blocker.unblock():
        yield lambda: handler.create_connection("default")
    for idle in base.DatabaseWrapper._idle.values():
        while not idle.empty():
            idle.get_nowait()[0].close()
    base.DatabaseWrapper._idle.clear()


def _in_a_new_thread(work):
    """Run `work` on a thread of its own, as Django runs each request's sync code under ASGI."""
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def _used_then_closed(wrapper):
    wrapper.ensure_connection()
    raw = wrapper.connection
    wrapper.close()
    return raw


def test_the_next_request_gets_the_closed_connection(database):
    first = _in_a_new_thread(lambda: _used_then_closed(database()))
    second = _in_a_new_thread(lambda: _used_then_closed(database()))
    assert second is first
    with database().cursor() as cursor:  # and it still works
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_an_open_transaction_is_rolled_back_before_the_connection_is_kept(database):
    wrapper = database()
    with wrapper.cursor() as cursor:
        cursor.execute("CREATE TABLE notes (text TEXT)")
    wrapper.set_autocommit(False)
    with wrapper.cursor() as cursor:
        cursor.execute("INSERT INTO notes VALUES ('never committed')")
    wrapper.close()

    reader = database()
    with reader.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notes")
        assert cursor.fetchone() == (0,)
        cursor.execute("INSERT INTO notes VALUES ('committed')")  # no lock left behind
    assert not reader.connection.in_transaction


def test_a_connection_to_a_replaced_file_is_not_handed_out(database, tmp_path):
    old = _used_then_closed(database())
    (tmp_path / "kept.sqlite3").unlink()  # as the test runner does when it recreates its database
    wrapper = database()
    with wrapper.cursor() as cursor:
        cursor.execute("CREATE TABLE fresh (id INTEGER)")
    assert wrapper.connection is not old
    assert (tmp_path / "kept.sqlite3").exists()


def test_a_forked_child_does_not_use_its_parents_connections(database, monkeypatch):
    parents = _used_then_closed(database())
    monkeypatch.setattr(base.os, "getpid", lambda: -1)  # a forked worker's own pid
    assert _used_then_closed(database()) is not parents


def test_at_most_a_few_connections_are_kept(database):
    wrappers = [database() for _ in range(base.IDLE_CONNECTIONS + 3)]
    raws = []
    for wrapper in wrappers:
        wrapper.ensure_connection()
        raws.append(wrapper.connection)
    for wrapper in wrappers:
        wrapper.close()
    (idle,) = base.DatabaseWrapper._idle.values()
    assert idle.qsize() == base.IDLE_CONNECTIONS
    closed = raws[base.IDLE_CONNECTIONS :]
    for raw in closed:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            raw.execute("SELECT 1")
