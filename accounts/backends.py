from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class UserBackend(ModelBackend):
    """Django's model backend, loading the signed-in person's organisation with them.

    Nearly every page reads the organisation (a person's time zone falls back to it, and every
    access check compares it), so the join saves a query on each signed-in request.
    """

    def get_user(self, user_id):
        try:
            user = get_user_model()._default_manager.select_related("organisation").get(pk=user_id)
        except get_user_model().DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
