"""What a model is given of a conversation: budgets, rendering, the heard part of an
interrupted utterance, and the deterministic digest."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from foreman.chat.context import (
    CUT_MARK,
    chat_messages,
    digest,
    estimate_tokens,
    heard_text,
    select,
    voice_seed,
)
from foreman.stores import Turn

WALL = 1_790_000_000.0


def t(kind: Any, text: str = "", channel: str = "chat", **data: Any) -> Turn:
    return Turn(kind=kind, text=text, channel=channel, session_id="s1", at=WALL, data=data)


def test_select_keeps_the_newest_turns_within_both_budgets() -> None:
    turns = [t("typed", f"message number {i} " * 10) for i in range(10)]
    cost = estimate_tokens(turns[0].text)
    assert select(turns, max_turns=3, max_tokens=10_000) == turns[-3:]
    assert select(turns, max_turns=10, max_tokens=cost * 2) == turns[-2:]
    assert select(turns, max_turns=0, max_tokens=10_000) == []
    # The newest turn is kept even when it alone is over the budget.
    assert select(turns, max_turns=10, max_tokens=1) == turns[-1:]


@given(
    sizes=st.lists(st.integers(0, 400), max_size=30),
    max_turns=st.integers(0, 40),
    max_tokens=st.integers(1, 2000),
)
def test_select_is_a_suffix_within_budget(
    sizes: list[int], max_turns: int, max_tokens: int
) -> None:
    turns = [t("typed", "x" * n) for n in sizes]
    picked = select(turns, max_turns=max_turns, max_tokens=max_tokens)
    assert picked == (turns[len(turns) - len(picked) :] if picked else [])
    assert len(picked) <= max_turns
    if len(picked) > 1:
        assert sum(estimate_tokens(p.text) for p in picked) <= max_tokens


def test_chat_messages_render_every_kind() -> None:
    turns = [
        t("typed", "text Ann I am late"),
        t("tool_call", "send_sms", call_id="c1", name="send_sms", arguments={"to": "+1"}),
        t("approval", "", call_id="c1", tool="send_sms", state="approved", approver="api"),
        t("tool_result", '{"ok": true}', call_id="c1", name="send_sms", ok=True),
        t("reply", "Sent."),
        t("spoken", "and the weather?", channel="phone"),
        t("speech", "Sunny in the", channel="phone", cut=True, full_text="Sunny in the morning"),
        t("summary", "The owner asked about the weather.", channel="phone"),
    ]
    messages = chat_messages(turns)
    assert [m["role"] for m in messages] == [
        "user",
        "system",
        "assistant",
        "user",
        "assistant",
        "system",
    ]
    notes = messages[1]["content"].splitlines()
    assert notes == [
        'Tool call send_sms {"to":"+1"}',
        "Approval of send_sms: approved by api",
        'Tool result of send_sms: {"ok": true}',
    ]
    assert messages[4]["content"] == "Sunny in the" + CUT_MARK
    assert messages[5]["content"].startswith("Summary of an earlier phone call: ")
    assert voice_seed(turns)[0] == ("user", "text Ann I am late")
    assert voice_seed(turns)[-1][0] == "system"


@given(
    text=st.text(alphabet="ab c,", max_size=60),
    heard=st.integers(-10, 5000),
    total=st.integers(1, 4000),
)
def test_heard_text_is_a_prefix_that_never_claims_more(text: str, heard: int, total: int) -> None:
    cut = heard_text(text, heard, total)
    assert text.startswith(cut)
    if heard >= total:
        assert cut == text
    else:
        assert len(cut) <= len(text) * max(heard, 0) / total
        # it ends at a word boundary: what follows the cut is not a letter of a cut word
        rest = text[len(cut) :]
        assert not cut or not rest or not (cut[-1].isalpha() and rest[0].isalpha())


@given(text=st.text(alphabet="abc ", max_size=40), a=st.integers(0, 3000), b=st.integers(0, 3000))
def test_hearing_more_never_gives_fewer_words(text: str, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert len(heard_text(text, lo, 3000)) <= len(heard_text(text, hi, 3000))


def test_heard_text_of_a_sentence() -> None:
    sentence = "Tomorrow will be sunny in the morning with a light breeze"
    # 57 characters: a quarter is 14 ("Tomorrow will "), half is 28 (inside "the").
    assert heard_text(sentence, 1000, 4000) == "Tomorrow will"
    assert heard_text(sentence, 2000, 4000) == "Tomorrow will be sunny in"
    assert heard_text(sentence, 0, 4000) == ""
    assert heard_text(sentence, 4000, 4000) == sentence


def test_digest_says_who_what_and_what_was_done() -> None:
    turns = [
        t("spoken", "text Ann I'm late", channel="phone"),
        t("tool_call", "", call_id="c1", name="send_sms"),
        t("approval", "", call_id="c1", tool="send_sms", state="denied"),
        t("tool_result", "{}", call_id="c1", name="send_sms", ok=False),
        t("speech", "Okay, I did not", channel="phone", cut=True),
    ]
    text = digest(turns, channel="phone", caller="Godfather", reason="end_call")
    assert text.startswith("A phone call with Godfather (ended: end_call).")
    assert "send_sms: not done" in text and "(interrupted)" in text
    assert 'The user said "text Ann I\'m late"' in text
    assert digest([], channel="local_voice", caller="", reason="x").endswith("Nothing was said.")


@given(
    said=st.lists(st.text(max_size=300), max_size=20),
    tools=st.lists(st.sampled_from(["send_sms", "get_time", "place_call"]), max_size=5),
)
def test_digest_is_bounded_deterministic_and_keeps_the_tools(
    said: list[str], tools: list[str]
) -> None:
    turns = [t("spoken", s) for s in said] + [
        t("tool_call", "", call_id=f"c{i}", name=name) for i, name in enumerate(tools)
    ]
    one = digest(turns, channel="phone", caller="Ann", reason="hung up", limit=600)
    assert one == digest(turns, channel="phone", caller="Ann", reason="hung up", limit=600)
    assert len(one) <= 600
    for name in tools:
        assert name in one  # tool outcomes come first: never truncated away
