"""OutboundIntentStore contract: put / attach / take once / purge by age."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from foreman.stores import OutboundIntent, OutboundIntentStore

from .conftest import INTENT_TTL_S

T0 = 500.0


def intent(ref: str = "out_1", created: float = T0, **kw: Any) -> OutboundIntent:
    return OutboundIntent(
        ref=ref, to="+14155550123", purpose="confirm Friday", created=created, **kw
    )


async def test_implements_the_interface(intent_store: Any) -> None:
    assert isinstance(intent_store, OutboundIntentStore)


async def test_an_intent_is_taken_once(intent_store: Any) -> None:
    await intent_store.put(intent())
    assert await intent_store.take("out_1") == intent()
    assert await intent_store.take("out_1") is None
    assert await intent_store.take("out_never") is None


async def test_concurrent_takers_one_gets_it(intent_store: Any) -> None:
    await intent_store.put(intent())
    got = await asyncio.gather(*(intent_store.take("out_1") for _ in range(20)))
    assert [g for g in got if g is not None] == [intent()]


async def test_put_replaces_the_same_ref(intent_store: Any) -> None:
    await intent_store.put(intent())
    replacement = OutboundIntent("out_1", "+14155550199", "second", T0 + 1)
    await intent_store.put(replacement)
    assert await intent_store.take("out_1") == replacement


async def test_the_call_sid_is_attached_while_the_intent_is_kept(intent_store: Any) -> None:
    await intent_store.put(intent())
    assert await intent_store.attach_call_sid("out_1", "CA123")
    assert (await intent_store.take("out_1")) == intent(call_sid="CA123")
    # Taken already (its stream started first): attaching does not bring it back.
    assert not await intent_store.attach_call_sid("out_1", "CA123")
    assert await intent_store.take("out_1") is None


async def test_purge_drops_intents_older_than_the_ttl(intent_store: Any) -> None:
    await intent_store.put(intent("out_old", created=T0))
    await intent_store.put(intent("out_new", created=T0 + 10))
    assert await intent_store.purge(T0 + INTENT_TTL_S - 0.001) == 0
    assert await intent_store.purge(T0 + INTENT_TTL_S) == 1
    assert await intent_store.take("out_old") is None
    assert await intent_store.take("out_new") == intent("out_new", created=T0 + 10)


async def test_an_intent_needs_a_ref(intent_store: Any) -> None:
    with pytest.raises(ValueError, match="ref"):
        await intent_store.put(intent(""))
