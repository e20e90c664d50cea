"""Fault injection and soak runs against real processes: `python -m faults.run`, `python -m faults.soak`.

Unlike bench/ (speed as ratios against a baseline), these prove behaviour when something breaks:
a killed ASGI server, a restarted Redis or Postgres, a killed Celery worker. See docs/reliability.md.
"""
