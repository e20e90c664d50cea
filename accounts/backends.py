from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from config.prepared import PreparedQuery

# Every signed-in request runs this: compiled once (config/prepared.py).
_USER_WITH_ORGANISATION = PreparedQuery(
    lambda pk: get_user_model()._default_manager.select_related("organisation").filter(pk=pk)
)


class UserBackend(ModelBackend):
    """Django's model backend, loading the signed-in person's organisation with them.

    Nearly every page reads the organisation (a person's time zone falls back to it, and every
    access check compares it), so the join saves a query on each signed-in request.
    """

    def get_user(self, user_id):
        try:
            user = _USER_WITH_ORGANISATION.get(user_id)  # an int: auth reads it with pk.to_python
        except get_user_model().DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
