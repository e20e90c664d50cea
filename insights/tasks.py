from celery import shared_task

from insights import services


@shared_task(acks_late=True)
def rollup_refresh_for_session(session_id: int) -> int:
    """Refresh the month of a session that just ended. Safe to run twice."""
    return services.rollup_refresh_for_session(session_id=session_id)


@shared_task(acks_late=True)
def rollups_refresh_nightly() -> int:
    """Refresh the twelve months the pages show, for every organisation. Safe to run twice."""
    return services.rollups_refresh_recent()
