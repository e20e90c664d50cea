"""A PreparedQuery gives what its queryset gives, compiling it once (config/prepared.py)."""

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from circles.models import Membership
from config.prepared import PreparedQuery
from reflections.models import Prompt, Reply, Thread
from tests.factories import make_circle

pytestmark = pytest.mark.django_db


@pytest.fixture
def threads(people):
    """Two threads in one circle: one from a prompt, one without (its prompt join finds nothing)."""
    circle = make_circle(people.facilitator, members=[people.member])
    prompt = Prompt.objects.filter(organisation=None).first()
    with_prompt = Thread.objects.create(
        circle=circle, author=people.member, title="From a prompt", prompt=prompt
    )
    without = Thread.objects.create(circle=circle, author=people.facilitator, title="On its own")
    return with_prompt, without


def _fields(instance, *names):
    return {name: getattr(instance, name) for name in names}


def test_instances_equal_the_querysets_own_with_related_rows_deferred_fields_and_datetimes(threads):
    prepared = PreparedQuery(lambda pk: Thread.objects.select_related("author", "prompt").filter(pk=pk))
    for thread in threads:
        expected = Thread.objects.select_related("author", "prompt").get(pk=thread.pk)
        got = prepared.get(thread.pk)
        assert got == expected and got._state.adding is False
        assert _fields(got, "title", "kind", "created_at", "circle_id") == _fields(
            expected, "title", "kind", "created_at", "circle_id"
        )
        assert got.created_at.tzinfo is not None  # the backend's converters ran (SQLite stores text)
        assert got.author.display_name == expected.author.display_name
        assert got.prompt == expected.prompt  # None when the join found no prompt
    assert threads[0].prompt is not None and prepared.get(threads[1].pk).prompt is None


def test_deferred_fields_stay_deferred_and_annotations_are_set(threads, people):
    only_title = PreparedQuery(lambda pk: Thread.objects.filter(pk=pk).only("title"))
    got = only_title.get(threads[0].pk)
    assert got.get_deferred_fields() >= {"body", "takeaway"} and got.title == "From a prompt"
    counted = PreparedQuery(
        lambda circle_id: Thread.objects.filter(circle_id=circle_id).annotate(replies_seen=Count("replies"))
    )
    Reply.objects.create(thread=threads[0], author=people.facilitator, body="A perspective")
    by_title = {thread.title: thread.replies_seen for thread in counted.fetch(threads[0].circle_id)}
    assert by_title == {"From a prompt": 1, "On its own": 0}


def test_the_queryset_is_built_and_compiled_once_then_only_run(threads):
    built = []

    def build(pk):
        built.append(pk)
        return Thread.objects.filter(pk=pk)

    prepared = PreparedQuery(build)
    assert [prepared.get(thread.pk).pk for thread in threads] == [thread.pk for thread in threads]
    assert len(built) == 1
    with CaptureQueriesContext(connection) as queries:
        prepared.get(threads[1].pk)
    assert len(queries) == 1 and str(threads[1].pk) in queries[0]["sql"]


def test_several_ids_go_to_their_own_places(people):
    circle = make_circle(people.facilitator, members=[people.member])
    other = make_circle(people.facilitator, name="Other circle")
    prepared = PreparedQuery(
        lambda circle_id, user_id: Membership.objects.select_related("circle").filter(
            circle_id=circle_id, user_id=user_id, left_at__isnull=True
        )
    )
    assert prepared.get(circle.pk, people.member.pk).circle.name == "Tuesday circle"
    assert prepared.get(other.pk, people.facilitator.pk).circle.name == "Other circle"
    with pytest.raises(Membership.DoesNotExist):
        prepared.get(other.pk, people.member.pk)  # the arguments swapped would find a row


def test_limit_and_offset_page_the_rows_in_the_querysets_order(threads, people):
    Reply.objects.bulk_create(
        Reply(thread=threads[0], author=people.member, body=f"r{n}", created_at=threads[0].created_at)
        for n in range(7)
    )
    prepared = PreparedQuery(lambda thread_id: Reply.objects.filter(thread_id=thread_id))
    everything = list(Reply.objects.filter(thread_id=threads[0].pk))
    assert prepared.fetch(threads[0].pk) == everything
    assert prepared.fetch(threads[0].pk, limit=3, offset=2) == everything[2:5]
    assert prepared.fetch(threads[0].pk, limit=3, offset=6) == everything[6:]


def test_no_row_and_more_than_one_row_raise_as_get_does(threads):
    by_circle = PreparedQuery(lambda circle_id: Thread.objects.filter(circle_id=circle_id))
    with pytest.raises(Thread.MultipleObjectsReturned):
        by_circle.get(threads[0].circle_id)
    with pytest.raises(Thread.DoesNotExist):
        by_circle.get(threads[0].circle_id + 1000)


@pytest.mark.parametrize("outside", [2**63, -(2**63) - 1, 10**30])
def test_an_id_no_column_can_hold_finds_nothing_instead_of_failing(threads, outside):
    prepared = PreparedQuery(lambda pk: Thread.objects.filter(pk=pk))
    assert prepared.fetch(outside) == []
    with pytest.raises(Thread.DoesNotExist):
        prepared.get(outside)


def test_a_parameter_the_sql_does_not_carry_is_refused_when_compiling(threads):
    # The title is compared as text: its marker integer does not come back among the parameters.
    prepared = PreparedQuery(lambda pk, title: Thread.objects.filter(pk=pk, title=str(title)))
    with pytest.raises(ValueError, match=r"Parameters \[1\]"):
        prepared.fetch(threads[0].pk, 0)


@pytest.mark.parametrize(
    "build",
    [
        lambda pk: Thread.objects.filter(pk=pk).prefetch_related("replies"),
        lambda pk: Thread.objects.filter(pk=pk)[:1],
    ],
    ids=["prefetch", "slice"],
)
def test_what_the_compiled_sql_would_silently_drop_is_refused(threads, build):
    with pytest.raises(ValueError, match="cannot prefetch"):
        PreparedQuery(build).fetch(threads[0].pk)


def test_a_related_managers_queryset_is_refused(threads):
    with pytest.raises(ValueError, match="related manager"):
        PreparedQuery(lambda pk: threads[0].circle.threads.filter(pk=pk)).fetch(threads[0].pk)
