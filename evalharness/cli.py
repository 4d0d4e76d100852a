"""The command line: ``evalharness run | validate | report`` (exit codes in the README)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from evalharness import __version__, app
from evalharness.errors import EvalHarnessError, UsageError


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

    p = sub.add_parser("validate", help="load and validate a config and its suites")
    p.add_argument("config", metavar="CONFIG")

    p = sub.add_parser("report", help="rebuild summary and reports of a finished run from its records")
    p.add_argument("run_dir", metavar="RUN_DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evalharness`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            if args.resume and args.out:
                raise UsageError("--resume and --out cannot be combined: a resumed run stays in its folder")
            return app.run(args.config, out=args.out, dry_run=args.dry_run, resume=args.resume,
                           gates=not args.no_gates)
        if args.command == "validate":
            return app.validate(args.config)
        if args.command == "report":
            return app.report(args.run_dir)
    except EvalHarnessError as exc:
        print(f"evalharness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evalharness: interrupted", file=sys.stderr)
        return 3
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
