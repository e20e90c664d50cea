import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY


class ContentSecurityPolicyMiddleware:
    """Adds the strict CSP and Permissions-Policy to every response, errors included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


class IdleSessionMiddleware:
    """Keeps a signed-in session alive while it is used, writing it at most once a minute.

    The idle timeout (SESSION_COOKIE_AGE) needs the expiry pushed forward as people use the site.
    Django's SESSION_SAVE_EVERY_REQUEST does it with a database write on every request; once a
    minute keeps the timeout exact to within a minute for a small share of the writes. Sits just
    inside SessionMiddleware, which saves the session when this marks it changed.
    """

    FIELD = "_alongside_refreshed_at"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = request.session
        if session.session_key and SESSION_KEY in session:
            now = int(time.time())
            if now - session.get(self.FIELD, 0) >= settings.SESSION_REFRESH_SECONDS:
                session[self.FIELD] = now
        return response
