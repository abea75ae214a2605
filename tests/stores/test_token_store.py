"""StreamTokenStore contract: single use, bound to the call, one live token per CallSid,
no new token for an admitted call until it is released, bounded table."""

from __future__ import annotations

import asyncio
import itertools
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from foreman.stores import MemoryStreamTokenStore, StreamTokenStore, StreamTokenTable

from .conftest import ADMITTED_TTL_S, TOKEN_TTL_S, names, open_store

SID = "CA" + "1" * 32
OTHER = "CA" + "2" * 32
T0 = 1000.0


async def test_implements_the_interface(token_store: Any) -> None:
    assert isinstance(token_store, StreamTokenStore)


async def test_tokens_are_long_random_and_distinct(token_store: Any) -> None:
    tokens = {await token_store.issue(f"CA{i}", T0) for i in range(200)}
    assert len(tokens) == 200
    assert all(isinstance(t, str) and len(t) >= 32 for t in tokens)


async def test_a_token_works_once(token_store: Any) -> None:
    token = await token_store.issue(SID, T0)
    assert await token_store.redeem(token, SID, T0 + 1)
    assert not await token_store.redeem(token, SID, T0 + 2)


async def test_a_token_for_another_call_is_refused_and_burnt(token_store: Any) -> None:
    token = await token_store.issue(SID, T0)
    assert not await token_store.redeem(token, OTHER, T0)
    assert not await token_store.redeem(token, SID, T0)


async def test_a_token_expires_after_the_ttl(token_store: Any) -> None:
    late = await token_store.issue(SID, T0)
    assert not await token_store.redeem(late, SID, T0 + TOKEN_TTL_S)
    just_in_time = await token_store.issue(OTHER, T0)
    assert await token_store.redeem(just_in_time, OTHER, T0 + TOKEN_TTL_S - 0.001)


async def test_issuing_again_replaces_the_live_token(token_store: Any) -> None:
    first = await token_store.issue(SID, T0)
    second = await token_store.issue(SID, T0 + 1)
    assert first != second
    assert not await token_store.redeem(first, SID, T0 + 2)
    # The stale attempt did not burn the newest token.
    assert await token_store.redeem(second, SID, T0 + 2)


async def test_an_admitted_call_gets_no_token_until_released(token_store: Any) -> None:
    assert await token_store.redeem(await token_store.issue(SID, T0), SID, T0)
    assert await token_store.issue(SID, T0 + 1) is None
    assert await token_store.issue(OTHER, T0 + 1) is not None  # other calls are unaffected
    await token_store.release(SID)
    again = await token_store.issue(SID, T0 + 2)
    assert again is not None
    assert await token_store.redeem(again, SID, T0 + 3)


async def test_an_admission_never_released_is_forgotten_after_its_ttl(token_store: Any) -> None:
    assert await token_store.redeem(await token_store.issue(SID, T0), SID, T0)
    assert await token_store.issue(SID, T0 + ADMITTED_TTL_S - 0.001) is None
    assert await token_store.issue(SID, T0 + ADMITTED_TTL_S) is not None


async def test_release_kills_a_live_token_and_is_idempotent(token_store: Any) -> None:
    token = await token_store.issue(SID, T0)
    await token_store.release(SID)
    await token_store.release(SID)
    await token_store.release("CA-never-seen")
    assert not await token_store.redeem(token, SID, T0)


@pytest.mark.parametrize("token", ["", "x", "not-a-token" * 10])
async def test_garbage_is_refused(token_store: Any, token: str) -> None:
    await token_store.issue(SID, T0)
    assert not await token_store.redeem(token, SID, T0)


async def test_an_empty_call_sid_gets_no_token(token_store: Any) -> None:
    with pytest.raises(ValueError, match="call sid"):
        await token_store.issue("", T0)


async def test_concurrent_redemptions_admit_exactly_one(token_store: Any) -> None:
    token = await token_store.issue(SID, T0)
    results = await asyncio.gather(*(token_store.redeem(token, SID, T0) for _ in range(20)))
    assert results.count(True) == 1


async def test_replaying_one_webhook_twenty_thousand_times(token_store: Any) -> None:
    issued = [await token_store.issue(SID, T0 + i * 0.001) for i in range(20_000)]
    now = T0 + 20.0
    for stale in (issued[0], issued[9_999], issued[-2]):
        assert not await token_store.redeem(stale, SID, now)
    assert await token_store.redeem(issued[-1], SID, now)
    replays = {await token_store.issue(SID, now + i * 0.001) for i in range(20_000)}
    assert replays == {None}
    if isinstance(token_store, MemoryStreamTokenStore):
        assert len(token_store) == 1


# --- the embedded store's table --------------------------------------------------------
def test_the_table_holds_only_hmacs_of_tokens() -> None:
    table = StreamTokenTable(TOKEN_TTL_S)
    token = table.issue(SID, T0)
    assert token is not None
    state = repr(vars(table)) + repr(table._owner) + repr(table._live)
    assert token not in state
    assert token.encode() not in table._owner


def test_expired_entries_are_purged() -> None:
    table = StreamTokenTable(TOKEN_TTL_S, admitted_ttl_s=ADMITTED_TTL_S)
    for i in range(1000):
        table.issue(f"CA{i}", T0)
    assert len(table) == 1000
    table.issue(SID, T0 + TOKEN_TTL_S)
    assert len(table) == 1
    assert table.redeem(table.issue(OTHER, T0 + TOKEN_TTL_S) or "", OTHER, T0 + TOKEN_TTL_S)
    table.purge(T0 + TOKEN_TTL_S + ADMITTED_TTL_S)
    assert len(table) == 0


def test_lifetimes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StreamTokenTable(0)
    with pytest.raises(ValueError):
        StreamTokenTable(1, admitted_ttl_s=-1)


# --- the rules against a model, with generated sequences ---------------------------------
SIDS = ("CA" + "a" * 32, "CA" + "b" * 32, "out_0123456789abcdef")


class TokenRules(RuleBasedStateMachine):
    """Drives a store with random issue / redeem / release / time steps and checks every
    answer against a model written from the interface's guarantees."""

    opener: Any = None
    workdir: Path = Path()
    paths = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.now = T0
        self.issued_for: dict[str, str] = {}  # every token issued -> its sid, oldest first
        self.latest: dict[str, str] = {}  # sid -> its newest token not yet burnt
        self.expires: dict[str, float] = {}  # token -> end of its life
        self.admitted_until: dict[str, float] = {}

    @initialize()
    def open(self) -> None:
        self.store = self.runner.run(self.opener(self.workdir / f"tokens-{next(self.paths)}.db"))

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.runner.run(self.store.aclose())
        self.runner.close()

    def _admitted(self, sid: str) -> bool:
        return self.admitted_until.get(sid, float("-inf")) > self.now

    @rule(dt=st.one_of(st.floats(0, 5), st.sampled_from([TOKEN_TTL_S, ADMITTED_TTL_S / 2])))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(sid=st.sampled_from(SIDS))
    def issue(self, sid: str) -> None:
        token = self.runner.run(self.store.issue(sid, self.now))
        if self._admitted(sid):
            assert token is None, "an admitted call got a new token"
            return
        assert isinstance(token, str)
        assert token not in self.issued_for, "a token was issued twice"
        self.issued_for[token] = sid
        self.latest[sid] = token
        self.expires[token] = self.now + TOKEN_TTL_S

    @rule(data=st.data())
    def redeem(self, data: st.DataObject) -> None:
        """A stream presenting a token: a live one (the real stream), a recent one (a quick
        retry), any one ever issued (a replay), or garbage; for its own call or another."""
        seen = list(self.issued_for)
        choices = [st.text(string.ascii_letters + "-_", max_size=40)]
        if self.latest:
            choices.append(st.sampled_from([self.latest[s] for s in sorted(self.latest)]))
        if seen:
            choices += [st.sampled_from(seen[-2:]), st.sampled_from(seen)]
        token = data.draw(st.one_of(choices), label="token")
        sids = st.sampled_from(SIDS)
        sid = data.draw(st.one_of(st.just(self.issued_for.get(token, SIDS[0])), sids), label="sid")

        ok = self.runner.run(self.store.redeem(token, sid, self.now))
        owner = next((s for s, t in self.latest.items() if t == token), None)
        expected = False
        if owner is not None:
            del self.latest[owner]  # any attempt burns it
            expected = owner == sid and self.now < self.expires[token]
        assert ok == expected
        if ok:
            self.admitted_until[sid] = self.now + ADMITTED_TTL_S

    @rule(sid=st.sampled_from(SIDS))
    def release(self, sid: str) -> None:
        self.runner.run(self.store.release(sid))
        self.admitted_until.pop(sid, None)
        self.latest.pop(sid, None)

    @precondition(lambda self: hasattr(self, "store"))
    @invariant()
    def bounded(self) -> None:
        if isinstance(self.store, MemoryStreamTokenStore):
            assert len(self.store) <= len(SIDS)


@pytest.mark.parametrize("impl", names("tokens"))
def test_token_rules_hold_for_generated_sequences(impl: str, tmp_path: Path) -> None:
    machine = type(
        f"TokenRules_{impl}",
        (TokenRules,),
        {
            "opener": staticmethod(lambda path: open_store("tokens", impl, path)),
            "workdir": tmp_path,
        },
    )
    machine.TestCase.settings = settings(max_examples=300, stateful_step_count=40)
    machine.TestCase().runTest()
