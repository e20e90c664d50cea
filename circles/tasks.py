"""Celery tasks of circles: thin, they take ids (or nothing), call one service, and are safe to run twice."""

from celery import shared_task

from circles import digest, live, reminders, services


@shared_task(acks_late=True)
def reminders_sweep() -> int:
    """Send the reminders that are due. Sweeps may overlap: each claims its own rows."""
    return reminders.reminders_send_due().sent


@shared_task(acks_late=True)
def reminders_replan() -> int:
    """Re-plan every open circle's reminders: a no-op when nothing changed."""
    return reminders.reminders_replan_all().created


@shared_task(acks_late=True)
def digests_send() -> int:
    """Send this week's digest to everyone who asked for one; a second run finds them all sent."""
    return digest.digests_send()


@shared_task(acks_late=True)
def sessions_materialise() -> int:
    """Plan every open circle's sessions for the rolling horizon; a second run creates nothing."""
    return services.sessions_materialise_all().created


@shared_task(acks_late=True)
def live_rooms_sweep() -> dict:
    """Close connections left by dead servers and end sessions past their end plus grace."""
    return live.rooms_sweep()


@shared_task(acks_late=True)
def live_chat_purge() -> int:
    """Blank session chat whose retention has run out; a second run finds nothing to blank."""
    return len(live.chat_purge_expired())
