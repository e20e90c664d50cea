"""Random actions, drops, reconnects and out-of-order deliveries: replay + snapshot == fresh snapshot.

Each simulated tab keeps state the way room.js does: it starts from a snapshot, applies events
strictly by seq (buffering any that arrive past a gap), ignores ones it already has, and on
reconnect asks for what came after its last seq. Whatever happens, once a tab has caught up its
state equals a fresh snapshot, and no event was ever applied twice.
"""

import itertools
import random

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from circles import live
from circles.models import LiveRoom
from tests.circles.live_support import make_session
from tests.factories import make_circle, make_org, make_person

ACTIONS = sorted(live.COMMAND_FIELDS)
_ids = itertools.count()


class Tab:
    def __init__(self, user_id: int):
        self.user_id = user_id
        self.channel = None
        self.state = None
        self.buffer = {}
        self.applied = []

    def take(self, reply: dict) -> None:
        if reply["type"] == "snapshot":
            snap = reply["snapshot"]
            self.state = {"seq": snap["seq"], **{key: snap[key] for key in live.STATE_KEYS}}
            self.buffer = {seq: e for seq, e in self.buffer.items() if seq > self.state["seq"]}
            self.drain()
        else:
            for event in reply["events"]:
                self.offer(event)

    def offer(self, event: dict) -> None:
        if self.state is None or event["seq"] <= self.state["seq"]:
            return
        self.buffer[event["seq"]] = event
        self.drain()

    def drain(self) -> None:
        while self.state["seq"] + 1 in self.buffer:
            event = self.buffer.pop(self.state["seq"] + 1)
            self.state = live.apply_event(self.state, event)
            self.applied.append(event["seq"])


class RoomMachine(RuleBasedStateMachine):
    @initialize()
    def build_room(self):
        org = make_org()
        fran = make_person(org, "Fran")
        members = [make_person(org) for _ in range(2)]
        circle = make_circle(fran, members=members)
        self.session = make_session(circle, facilitator=fran)
        self.users = [fran.pk, *(m.pk for m in members)]
        # Two tabs for the first member: several tabs must count as one person.
        self.tabs = [Tab(self.users[0]), Tab(self.users[1]), Tab(self.users[1]), Tab(self.users[2])]
        self.last_command = None
        for tab in self.tabs:
            self.connect(tab)

    def connect(self, tab: Tab) -> None:
        tab.channel = f"tab-{next(_ids)}"
        live.connection_open(session_id=self.session.pk, user_id=tab.user_id, channel_name=tab.channel)
        last = tab.state["seq"] if tab.state else None
        tab.take(live.catch_up(session_id=self.session.pk, user_id=tab.user_id, last_seq=last))

    def server_state(self) -> dict:
        return LiveRoom.objects.get(pk=self.session.pk).state

    def fields_for(self, action: str, data) -> dict:
        state = self.server_state()
        if action in ("round.next", "round.previous"):
            return {"round": data.draw(st.sampled_from([state.get("round", 0), 0, 1, 5]))}
        if action in ("piece.give", "facilitation.hand"):
            return {"to": data.draw(st.sampled_from(self.users))}
        if action == "order.set":
            order = list(state.get("order", []))
            random.Random(data.draw(st.integers(0, 99))).shuffle(order)
            return {"order": order}
        if action == "message.post":
            return {"text": data.draw(st.text(min_size=1, max_size=20))}
        if action in ("moment.set", "away.set"):
            return {"on": data.draw(st.booleans())}
        return {}

    @rule(tab=st.integers(0, 3), action=st.sampled_from(ACTIONS), data=st.data())
    def act(self, tab, action, data):
        # End the session only rarely, so most runs exercise the live room for long.
        if action == "session.end" and not data.draw(st.integers(0, 9)) == 0:
            return
        user_id = self.tabs[tab].user_id
        command = live.Command(
            type=action, client_id=f"cmd-{next(_ids)}", fields=self.fields_for(action, data)
        )
        try:
            result = live.perform(session_id=self.session.pk, user_id=user_id, command=command)
        except live.LiveError:
            return
        assert result["duplicate"] is False
        self.last_command = (user_id, command, result["seq"])

    @rule()
    def resend_last_command(self):
        if self.last_command is None:
            return
        user_id, command, seq = self.last_command
        before = LiveRoom.objects.get(pk=self.session.pk).last_seq
        result = live.perform(session_id=self.session.pk, user_id=user_id, command=command)
        assert result == {"seq": seq, "duplicate": True}
        assert LiveRoom.objects.get(pk=self.session.pk).last_seq == before

    @rule(tab=st.integers(0, 3))
    def drop(self, tab):
        tab = self.tabs[tab]
        if tab.channel is not None:
            live.connection_close(channel_name=tab.channel)
            tab.channel = None

    @rule(tab=st.integers(0, 3))
    def reconnect(self, tab):
        if self.tabs[tab].channel is None:
            self.connect(self.tabs[tab])

    @rule(tab=st.integers(0, 3), seed=st.integers(0, 999), keep=st.floats(0, 1))
    def deliver_some_broadcasts(self, tab, seed, keep):
        """The bell rings out of order and some rings are lost: the tab buffers and waits."""
        tab = self.tabs[tab]
        if tab.channel is None:
            return
        reply = live.catch_up(session_id=self.session.pk, user_id=tab.user_id, last_seq=tab.state["seq"])
        events = reply["events"] if reply["type"] == "events" else []
        rng = random.Random(seed)
        arriving = [e for e in events if rng.random() < keep]
        rng.shuffle(arriving)
        for event in arriving:
            tab.offer(event)

    @rule(tab=st.integers(0, 3))
    def sync_and_compare(self, tab):
        tab = self.tabs[tab]
        if tab.channel is None:
            return
        tab.take(live.catch_up(session_id=self.session.pk, user_id=tab.user_id, last_seq=tab.state["seq"]))
        self.assert_matches_fresh_snapshot(tab)

    def assert_matches_fresh_snapshot(self, tab: Tab) -> None:
        fresh = live.snapshot(session_id=self.session.pk, user_id=tab.user_id)
        assert tab.buffer == {}
        assert tab.state == {"seq": fresh["seq"], **{key: fresh[key] for key in live.STATE_KEYS}}

    @invariant()
    def no_event_applied_twice(self):
        for tab in getattr(self, "tabs", []):
            assert len(tab.applied) == len(set(tab.applied))
            assert tab.applied == sorted(tab.applied)

    def teardown(self):
        for tab in getattr(self, "tabs", []):
            if tab.channel is None:
                self.connect(tab)
            tab.take(
                live.catch_up(session_id=self.session.pk, user_id=tab.user_id, last_seq=tab.state["seq"])
            )
            self.assert_matches_fresh_snapshot(tab)


@pytest.mark.django_db
def test_replay_plus_snapshot_always_equals_a_fresh_snapshot(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    run_state_machine_as_test(
        RoomMachine,
        settings=hypothesis_settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
