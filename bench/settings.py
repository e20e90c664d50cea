"""The product's settings, served with bench/urls.py: its URLs plus the hello-world baseline.

The baseline lives here, not in config/urls.py, so the product never serves it.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
