"""The offline engine with `[local] stt = "pocketsphinx"`: flite speech in (pocketsphinx cannot
read espeak-ng's voice), the Chat Completions stand-in as the LLM, spoken answer out."""

from __future__ import annotations

import asyncio

import pytest
from test_local_engine import Driven, _options

from foreman.backends import interface as b
from foreman.backends.local_engine import PCM16_16K, LocalEngineBackend
from foreman.backends.local_runtime import LocalRuntime
from foreman.config import settings_from_dict
from foreman.testing.chat_standin import Answer, ChatStandIn, Rule, When
from foreman.testing.voices import flite_speech, have_flite, with_silence

pytest.importorskip("pocketsphinx")
pytestmark = pytest.mark.skipif(not have_flite(), reason="flite is not installed")


async def test_speech_is_heard_by_pocketsphinx_and_answered() -> None:
    rules = [Rule(When.user("lights"), Answer.say("The kitchen lights are on."))]
    async with ChatStandIn(rules) as llm:
        settings = settings_from_dict(
            {
                "chat": {"base_url": llm.base_url},
                "local": {"stt": "pocketsphinx", "warm_prompt": False},
            }
        )
        runtime = LocalRuntime(settings)
        backend = LocalEngineBackend(_options(), runtime)
        await backend.start()
        driven = Driven(backend)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(driven.collect())
            await backend.run(tg)
            speech = flite_speech("Please turn on the kitchen lights.", "rms", 16_000)
            await driven.say(with_silence(speech, 16_000))
            await driven.wait(lambda: driven.of(b.ReplyEnded))
            await backend.close()
    user = [t.text for t in driven.of(b.TranscriptSegment) if t.role == "user" and t.final]
    assert len(user) == 1 and "kitchen lights" in user[0], user
    said = [t.text for t in driven.of(b.TranscriptSegment) if t.role == "assistant" and t.final]
    assert said == ["The kitchen lights are on."]
    assert PCM16_16K.ms_for_bytes(len(b"".join(a.audio for a in driven.of(b.AssistantAudio)))) > 500
    assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": user[0]}
    stt = runtime.components()["stt"]
    assert stt["name"].startswith("pocketsphinx") and stt["load_s"] > 0
