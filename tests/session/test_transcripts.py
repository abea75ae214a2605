"""UtteranceAssembler: whole utterances from transcript pieces, finals or none. No asyncio."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from foreman.session.transcripts import Role, Utterance, UtteranceAssembler

U, A = "user", "assistant"


def step(assembler: UtteranceAssembler, op: tuple[Any, ...]) -> Any:
    """Apply one scripted operation and return what it returned."""
    match op:
        case ("piece", role, text, now):
            return assembler.piece(role, text, final=False, now=now)
        case ("final", role, text, now):
            return assembler.piece(role, text, final=True, now=now)
        case ("due", now):
            return assembler.due(now)
        case ("close", role):
            return assembler.close(role)
        case ("flush",):
            return assembler.flush()
        case ("deadline",):
            return assembler.deadline()
    raise AssertionError(op)


def u(role: str, text: str) -> Utterance:
    return Utterance(role, text)  # type: ignore[arg-type]


# Each case: (operation, what it must return), in order, on a fresh assembler (gap 0.8 s).
CASES: dict[str, list[tuple[tuple[Any, ...], Any]]] = {
    "a final replaces the pieces": [
        (("piece", U, "hel", 0.0), []),
        (("piece", U, "lo there", 0.1), []),
        (("final", U, " Hello there. ", 0.2), [u(U, "Hello there.")]),
        (("flush",), []),
    ],
    "a final with nothing said closes nothing and drops the pieces": [
        (("piece", U, "uh", 0.0), []),
        (("final", U, "  ", 0.1), []),
        (("flush",), []),
    ],
    "the other speaker's piece closes a speaker without finals": [
        (("piece", U, "Is it ", 0.0), []),
        (("piece", U, "raining?", 0.1), []),
        (("piece", A, "It ", 0.3), [u(U, "Is it raining?")]),
        (("piece", A, "is.", 0.4), []),
        (("piece", U, "Thanks", 0.5), [u(A, "It is.")]),
        (("flush",), [u(U, "Thanks")]),
    ],
    "a blank piece of the other speaker closes nothing": [
        (("piece", U, "hello", 0.0), []),
        (("piece", A, "  ", 0.1), []),
        (("piece", U, " you", 0.2), []),
        (("close", U), [u(U, "hello you")]),
    ],
    "a final of the other speaker does not close (finals arrive late)": [
        (("piece", A, "Sure, ", 0.0), []),
        (("final", U, "Can you help?", 0.1), [u(U, "Can you help?")]),
        (("piece", A, "I can.", 0.2), []),
        (("close", A), [u(A, "Sure, I can.")]),
    ],
    "a speaker with finals is not closed by the other speaker": [
        (("final", A, "First.", 0.0), [u(A, "First.")]),
        (("piece", A, "Sec", 0.1), []),
        (("piece", U, "wait", 0.2), []),  # the assistant's own final closes its text
        (("final", A, "Second.", 0.3), [u(A, "Second.")]),
        (("flush",), [u(U, "wait")]),
    ],
    "silence closes after the gap; the deadline says when": [
        (("deadline",), None),
        (("piece", U, "one", 1.0), []),
        (("piece", U, " two", 1.5), []),
        (("deadline",), 2.3),
        (("due", 2.29), []),
        (("due", 2.3), [u(U, "one two")]),
        (("deadline",), None),
        (("due", 9.0), []),
    ],
    "the oldest open utterance sets the deadline": [
        (("piece", U, "a", 1.0), []),
        (("piece", A, "  ", 1.2), []),
        (("deadline",), 1.8),
        (("due", 1.8), [u(U, "a")]),
        (("deadline",), 2.0),
        (("due", 2.0), []),  # blank: closes without an utterance
        (("deadline",), None),
    ],
    "speakers with finals have no deadline": [
        (("final", U, "Yes.", 0.0), [u(U, "Yes.")]),
        (("piece", U, "no", 0.1), []),
        (("deadline",), None),
        (("due", 100.0), []),
        (("flush",), [u(U, "no")]),  # the session ended before its final came
    ],
    "close and flush never emit the same utterance twice": [
        (("piece", A, "Bye.", 0.0), []),
        (("close", A), [u(A, "Bye.")]),
        (("close", A), []),
        (("due", 5.0), []),
        (("flush",), []),
    ],
    "empty pieces make no utterance": [
        (("piece", U, "", 0.0), []),
        (("piece", U, " \n ", 0.1), []),
        (("due", 5.0), []),
        (("piece", A, "", 6.0), []),
        (("flush",), []),
    ],
}


@pytest.mark.parametrize("script", CASES.values(), ids=CASES.keys())
def test_assembler(script: list[tuple[tuple[Any, ...], Any]]) -> None:
    assembler = UtteranceAssembler(gap_s=0.8)
    for op, expected in script:
        got = step(assembler, op)
        if isinstance(expected, float):
            assert got == pytest.approx(expected), op
        else:
            assert got == expected, op


@given(
    touched=st.floats(0, 1e6, allow_nan=False),
    gap_s=st.sampled_from([0.1, 0.3, 0.7, 0.8, 1.3]),
)
@example(touched=9409.767330057914, gap_s=0.8)
def test_due_at_the_reported_deadline_closes(touched: float, gap_s: float) -> None:
    """Regression: due() compared `now - touched >= gap_s`, which float rounding makes False
    at the very deadline reported, so a caller woken at its deadline got nothing back."""
    assembler = UtteranceAssembler(gap_s)
    assembler.piece("user", "hi", final=False, now=touched)
    deadline = assembler.deadline()
    assert deadline is not None
    assert assembler.due(deadline) == [Utterance("user", "hi")]


# --- property: a speaker without finals ------------------------------------------------------
OPS = st.one_of(
    st.tuples(st.just("piece"), st.sampled_from([U, U, A]), st.sampled_from(["w", " ", "w ", ""])),
    st.tuples(st.just("final"), st.just(A), st.sampled_from(["w", "  "])),
    st.tuples(st.just("wait"), st.sampled_from([0.1, 0.5, 0.8, 2.0])),
    st.tuples(st.just("close"), st.sampled_from([U, A])),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(OPS, max_size=40))
@example(ops=[("piece", U, "w"), ("wait", 0.8)])
def test_pieces_of_a_speaker_without_finals_come_out_whole_and_once(
    ops: list[tuple[Any, ...]],
) -> None:
    """The user never sends finals: the texts of its utterances, in order, are its pieces
    split at utterance boundaries (only whitespace is lost there), and every utterance is
    emitted once. Words are numbered so that a repeat would show."""
    assembler = UtteranceAssembler(gap_s=0.8)
    now, words = 0.0, 0
    pieces: dict[Role, list[str]] = {U: [], A: []}
    emitted: list[Utterance] = []

    def collect(closed: list[Utterance]) -> None:
        for utterance in closed:
            assert utterance.text and utterance.text == utterance.text.strip()
            emitted.append(utterance)

    for op in ops:
        if op[0] == "wait":
            now += op[1]
            deadline = assembler.deadline()
            if deadline is not None and deadline > now:
                assert assembler.due(now) == []  # not yet
            else:
                collect(assembler.due(now))
                after = assembler.deadline()
                assert after is None or after > now
        elif op[0] == "close":
            collect(assembler.close(op[1]))
        else:
            kind, role, text = op
            if "w" in text:
                words += 1
                text = text.replace("w", f"w{words}")
            if kind == "piece":
                pieces[role].append(text)
            collect(assembler.piece(role, text, final=kind == "final", now=now))
    collect(assembler.flush())

    texts = [x.text for x in emitted]
    assert len(texts) == len(set(texts)), "an utterance was emitted twice"
    user_said = "".join(pieces[U])
    position = 0
    for text in (x.text for x in emitted if x.role == U):
        found = user_said.find(text, position)
        assert found >= 0 and not user_said[position:found].strip(), (text, user_said)
        position = found + len(text)
    assert not user_said[position:].strip(), "user pieces lost"
