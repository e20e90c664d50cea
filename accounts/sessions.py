"""Django's database sessions, with the read every signed-in request starts with written out.

Through the ORM, compiling that one-row query cost several times running it. Saving, expiry,
clearing and everything else stay Django's (SESSION_ENGINE = "accounts.sessions").
"""

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

_LIVE_SESSION = "SELECT session_data FROM django_session WHERE session_key = %s AND expire_date > %s"


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        """As Django's: the live session's row, or None (and no key) when it is missing or expired."""
        connection = connections[router.db_for_read(self.model)]
        now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM would send it
        with connection.cursor() as cursor:
            cursor.execute(_LIVE_SESSION, [self.session_key, now])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return self.model(session_key=self.session_key, session_data=row[0])
