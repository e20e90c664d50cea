from django.apps import AppConfig


class CirclesConfig(AppConfig):
    name = "circles"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out

        from circles.sockets import on_user_logged_out

        # Signing out closes the sockets that browser session opened (circles.sockets).
        user_logged_out.connect(on_user_logged_out, dispatch_uid="circles.sockets.on_user_logged_out")
