"""The command line: ``evalharness run | merge | validate | report | compare | history | github-comment | probe``
(exit codes in the README)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from evalharness import __version__, app, regress
from evalharness.errors import EvalHarnessError, UsageError
from evalharness.probe import probe
from evalharness.shards import Shard


def tolerance(text: str) -> float:
    """A tolerance: a number >= 0 (argparse turns the ValueError into a usage error, exit 2)."""
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


def usable_cpus(cap: int = 8) -> int:
    """The CPUs this process may run on (the affinity mask where there is one), at most ``cap``."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, min(cap, len(affinity(0)) if affinity else os.cpu_count() or 1))


def target_pair(text: str) -> tuple[str, str]:
    """``A=B`` for ``--match-target``: target A of the base run against target B of the new one."""
    a, sep, b = text.partition("=")
    if not sep or not a or not b:
        raise ValueError(text)
    return a, b


def _population(p: argparse.ArgumentParser) -> None:
    p.add_argument("--population", choices=("suite", "cases"), default="suite",
                   help="the question a comparison answers: did this suite change (suite, the default: cases "
                        "fixed, repeats random), or would cases like these (cases: clustered by case; needs "
                        "many cases)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalharness",
        description="Evaluate and benchmark an OpenAI-compatible chat API across prompt suites and "
                    "parameter grids.",
        epilog="Exit codes: 0 all gates pass; 1 a gate failed; 2 usage or config error; "
               "3 the run could not complete.")
    parser.add_argument("--version", action="version", version=f"evalharness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a config: call the API, score, gate and write reports")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--out", metavar="DIR", help="run directory (default: reports/<name>/<run-id>)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and cost estimate; call nothing")
    p.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run in RUN_DIR")
    p.add_argument("--no-gates", action="store_true", help="do not evaluate gates (exit 0 unless the run fails)")
    p.add_argument("--baseline", metavar="RUN_DIR", help="also gate on regressions against the run in RUN_DIR "
                                                         "(as evalharness compare does)")
    p.add_argument("--shard", metavar="K/N", help="run only shard K of N of the plan (1-based; deterministic, so "
                                                  "N machines run N shards; join them with evalharness merge)")
    p.add_argument("--executor", choices=["local", "ray"], help="send the requests from this process (local) or "
                                                                "from Ray workers (ray); overrides run.executor")
    p.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster to run on (run.ray_address; default: "
                                                        "start a local Ray)")
    _population(p)

    p = sub.add_parser("merge", help="join the shard runs of one plan into one run and score it")
    p.add_argument("shard_dirs", metavar="SHARD_DIR", nargs="+")
    p.add_argument("--out", metavar="DIR", required=True, help="the merged run's directory (a new folder)")
    p.add_argument("--allow-partial", action="store_true",
                   help="merge even when shards or records are missing (the run is marked incomplete, exit 3)")
    p.add_argument("--no-gates", action="store_true", help="do not evaluate gates")

    p = sub.add_parser("validate", help="load and validate a config and its suites")
    p.add_argument("config", metavar="CONFIG")

    p = sub.add_parser("report", help="rebuild summary and reports of a finished run from its records")
    p.add_argument("run_dir", metavar="RUN_DIR")

    p = sub.add_parser("compare", help="regression verdicts of NEW_RUN against BASE_RUN (exit 1 on a regression)")
    p.add_argument("base_run", metavar="BASE_RUN")
    p.add_argument("new_run", metavar="NEW_RUN")
    p.add_argument("--max-drop", type=tolerance, default=regress.RATE_TOLERANCE, metavar="POINTS",
                   help="a rate may worsen by this much (0.05 = 5 points) before it counts as a regression "
                        f"(default {regress.RATE_TOLERANCE:g})")
    p.add_argument("--max-slowdown", type=tolerance, default=regress.LATENCY_TOLERANCE, metavar="FRACTION",
                   help="a median latency may grow by this fraction (0.5 = 50%%) before it counts as a "
                        f"regression (default {regress.LATENCY_TOLERANCE:g})")
    _population(p)
    p.add_argument("--json", metavar="FILE", help="also write the comparison as JSON to FILE")
    p.add_argument("--match-target", type=target_pair, metavar="A=B",
                   help="compare the base run's target A with the new run's target B, grid point by grid point "
                        "(runs against different targets or models)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="what to print: the text table (default), Markdown for a pull request comment or "
                        "$GITHUB_STEP_SUMMARY, or the comparison as JSON")

    p = sub.add_parser("history", help="trends of every cell's metrics over stored runs, and the run where each "
                                       "regression first appeared: history.html and history.json")
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="a config's reports/<name>/ folder, run folders, or globs of them")
    p.add_argument("--out", metavar="DIR", help="where to write history.html and history.json (default: the "
                                                "folder of runs given, or the one folder the runs are in)")
    p.add_argument("--last", type=int, metavar="N", help="only the latest N complete runs")
    p.add_argument("--jobs", type=int, default=usable_cpus(), metavar="N",
                   help="processes that judge runs not judged before (default: the CPUs this process may use, "
                        "at most 8)")
    p.add_argument("--max-drop", type=tolerance, default=regress.RATE_TOLERANCE, metavar="POINTS",
                   help="as for compare")
    p.add_argument("--max-slowdown", type=tolerance, default=regress.LATENCY_TOLERANCE, metavar="FRACTION",
                   help="as for compare")
    _population(p)

    p = sub.add_parser("github-comment", help="post BODY_FILE as the pull request's evalharness comment, or "
                                              "update the one posted before")
    p.add_argument("body_file", metavar="BODY_FILE")
    p.add_argument("--repo", metavar="OWNER/NAME", help="default: $GITHUB_REPOSITORY")
    p.add_argument("--pr", type=int, metavar="NUMBER", help="default: the pull request of $GITHUB_REF")
    p.add_argument("--token-env", default="GITHUB_TOKEN", metavar="VAR",
                   help="the environment variable that holds the token (default GITHUB_TOKEN)")
    p.add_argument("--api-url", metavar="URL", help="default: $GITHUB_API_URL or https://api.github.com")

    p = sub.add_parser("probe", help="test which request parameters the config's target really honours")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--out", metavar="DIR", help="where to write probe.json and probe.html "
                                                "(default: reports/<name>/probe-<run-id>)")
    p.add_argument("--target", metavar="NAME", help="probe only this target of the config (default: every one)")
    return parser


def _executor(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--executor`` and ``--ray-address`` as overrides of the config's ``run``."""
    run: dict[str, Any] = {}
    if args.executor:
        run["executor"] = args.executor
    if args.ray_address:
        run["ray_address"] = args.ray_address
        run.setdefault("executor", "ray")
    return {"run": run} if run else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evalharness`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            if args.resume and args.out:
                raise UsageError("--resume and --out cannot be combined: a resumed run stays in its folder")
            if args.baseline and args.no_gates:
                raise UsageError("--baseline gates the run on regressions; it cannot be combined with --no-gates")
            return app.run(args.config, out=args.out, dry_run=args.dry_run, resume=args.resume,
                           gates=not args.no_gates, baseline=args.baseline, population=args.population,
                           shard=Shard.parse(args.shard) if args.shard else None, overrides=_executor(args))
        if args.command == "merge":
            return app.merge(args.shard_dirs, out=args.out, allow_partial=args.allow_partial,
                             gates=not args.no_gates)
        if args.command == "validate":
            return app.validate(args.config)
        if args.command == "report":
            return app.report(args.run_dir)
        if args.command == "compare":
            return app.compare(args.base_run, args.new_run, rate_tolerance=args.max_drop,
                               latency_tolerance=args.max_slowdown, population=args.population,
                               json_out=args.json, fmt=args.format,
                               match_target=args.match_target)
        if args.command == "history":
            return app.history(args.dirs, out=args.out, last=args.last, jobs=args.jobs, rate_tolerance=args.max_drop,
                               latency_tolerance=args.max_slowdown, population=args.population)
        if args.command == "github-comment":
            return app.github_comment(args.body_file, repo=args.repo, number=args.pr, token_env=args.token_env,
                                      api_url=args.api_url)
        if args.command == "probe":
            return probe(args.config, out=args.out, target=args.target)
    except EvalHarnessError as exc:
        print(f"evalharness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evalharness: interrupted", file=sys.stderr)
        return 3
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
