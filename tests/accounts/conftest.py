import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Every persona gets a password; the real hasher is deliberately slow, and these tests build many."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
