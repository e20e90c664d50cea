from celery import shared_task

from reflections import services


@shared_task(acks_late=True)
def reflections_retention_purge() -> int:
    """Delete reflections older than each organisation keeps them. Safe to run twice."""
    return services.retention_purge()
