"""Checks of your own: a function in a file beside the suite (``expect: {python: "checks.py:is_polite"}``) or a
named check (``expect: {check: NAME}``), resolved when the suite is validated and kept in the manifest.

The manifest keeps a file check's path and the SHA-256 of the file, so ``evalharness report`` re-scores a
finished run on its own and says so when the file has changed or gone since. A check that raises, or returns
something that is not a verdict, fails that sample with the error and its traceback; it never stops a run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from evalharness.errors import ConfigError
from evalharness.scoring.registry import DEFAULT_MIN, CheckContext, CheckFn, CheckResult, lookup

RETURNS = "a check returns a bool, a score in [0, 1] or an evalharness.CheckResult"
# Imported check files by (path, content hash): every case using a file shares one import, and a file
# edited between a run and its report is imported again.
_MODULES: dict[tuple[str, str], ModuleType] = {}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import_file(path: Path, digest: str) -> ModuleType:
    key = (str(path), digest)
    if key in _MODULES:
        return _MODULES[key]
    spec = importlib.util.spec_from_file_location(f"evalharness_checks_{digest[:16]}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path.name} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    # Registered like any module (dataclasses and pickling look themselves up there), and the file may import
    # helpers that sit beside it, as a script would.
    sys.modules[spec.name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # user code: whatever it raises on import is a problem of the suite's file
        del sys.modules[spec.name]
        last = traceback.format_exception_only(exc)[-1].strip()
        raise ConfigError(f"importing {path.name} failed: {last}") from exc
    finally:
        sys.path.remove(str(path.parent))
    _MODULES[key] = module
    return module


def _takes_answer_and_case(fn: Any, what: str) -> None:
    if not callable(fn):
        raise ConfigError(f"{what} is a {type(fn).__name__}, not a function")
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError as exc:
        raise ConfigError(f"{what} must take two arguments (answer, case)") from exc
    except ValueError:  # some builtins have no signature to inspect: let the call tell
        pass


def load_file_check(folder: Path, ref: str) -> tuple[CheckFn, Path, str]:
    """The function ``ref`` (``file.py:function``, the file relative to ``folder``), its file and its hash.

    Raises ``ConfigError`` (without a location: the suite adds it) for a bad reference, a missing file or
    function, a failing import, or something that is not a two-argument function.
    """
    file, sep, name = ref.rpartition(":")
    if not sep or not file or not name.isidentifier():
        raise ConfigError(f"{ref!r} is not file.py:function", hint="e.g. checks.py:is_polite, beside the suite")
    path = (folder / file).resolve()
    if not path.is_file():
        raise ConfigError(f"check file not found: {file} (looked in {path})")
    digest = file_sha256(path)
    module = _import_file(path, digest)
    if not hasattr(module, name):
        found = [n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")]
        raise ConfigError(f"{file} has no function {name!r}",
                          hint=f"its functions: {', '.join(found)}" if found else None)
    fn = getattr(module, name)
    _takes_answer_and_case(fn, f"{file}:{name}")
    return fn, path, digest


@dataclass(frozen=True)
class CheckRef:
    """One check of a case by file (``python``) or by name (``check``), as the manifest keeps it."""

    kind: Literal["python", "check"]
    ref: str  # "checks.py:is_polite" as the suite wrote it, or the check's name
    min: float = DEFAULT_MIN
    args: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # python: the file, absolute
    sha256: str | None = None  # python: the file's hash when the suite was validated
    source: str | None = None  # check: where the name came from (built-in, module, entry point)

    def to_manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "min": self.min, "args": self.args, "path": self.path,
                "sha256": self.sha256, "source": self.source}

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> CheckRef:
        return cls(kind=data["kind"], ref=data["ref"], min=data.get("min", DEFAULT_MIN), args=data.get("args") or {},
                   path=data.get("path"), sha256=data.get("sha256"), source=data.get("source"))


@dataclass(frozen=True)
class Resolved:
    """A check ready to call now, or why it cannot be (``problem``), and a ``note`` on what changed since."""

    ref: CheckRef
    fn: CheckFn | None
    problem: str | None = None
    note: str | None = None

    @property
    def status(self) -> str:
        return "missing" if self.problem else "changed" if self.note else "ok"


def resolve(ref: CheckRef) -> Resolved:
    """Find a stored check's function again (for scoring after the run, or ``report`` long after)."""
    if ref.kind == "check":
        try:
            return Resolved(ref, lookup(ref.ref).fn)
        except ConfigError as exc:
            was = f" (at run time: {ref.source})" if ref.source else ""
            return Resolved(ref, None, problem=f"{exc.message}{was}")
    assert ref.path is not None
    path = Path(ref.path)
    if not path.is_file():
        return Resolved(ref, None, problem=f"the check file {path} is missing; its checks cannot be scored")
    try:
        fn, _, digest = load_file_check(path.parent, f"{path.name}:{ref.ref.rpartition(':')[2]}")
    except ConfigError as exc:
        return Resolved(ref, None, problem=f"{path}: {exc.message}")
    note = None
    if ref.sha256 and digest != ref.sha256:
        note = (f"{path} changed since the run (sha256 {ref.sha256[:12]} then, {digest[:12]} now); "
                f"scored with the file as it is now")
    return Resolved(ref, fn, note=note)


@dataclass(frozen=True)
class CheckOutcome:
    """One check on one sample. ``error`` and ``traceback`` are set when the check itself failed."""

    check: str
    passed: bool
    reason: str = ""
    score: float | None = None
    error: str | None = None
    traceback: str | None = None
    builtin: bool = False  # a built-in's reason is the whole message, as it always was

    @property
    def message(self) -> str:
        """The failure as the report and junit.xml name it (empty for a pass)."""
        if self.passed:
            return ""
        if self.builtin and self.reason and not self.error:
            return self.reason
        if self.error:
            return f"{self.check}: {self.error}"
        return f"{self.check}: {self.reason}" if self.reason else f"{self.check} failed"


def verdict(value: Any, label: str, minimum: float) -> CheckOutcome:
    """A check's return value as an outcome; anything but a verdict is an error of the check."""
    if isinstance(value, CheckResult):
        if not isinstance(value.passed, bool):
            return CheckOutcome(label, False, error=f"returned CheckResult(passed={value.passed!r}); passed "
                                                    f"must be True or False")
        return CheckOutcome(label, value.passed, value.reason, value.score)
    if isinstance(value, bool):
        return CheckOutcome(label, value)
    if isinstance(value, (int, float)):
        score = float(value)
        if not (0.0 <= score <= 1.0):  # also refuses NaN
            return CheckOutcome(label, False, error=f"returned the score {value!r}, outside [0, 1]")
        passed = score >= minimum
        return CheckOutcome(label, passed, "" if passed else f"score {score:g} < {minimum:g}", score)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return CheckOutcome(label, False, error=f"returned {type(value).__name__} {shown}; {RETURNS}")


def run_check(fn: CheckFn, answer: str, context: CheckContext, *, label: str,
              minimum: float = DEFAULT_MIN, builtin: bool = False) -> CheckOutcome:
    """Call a check on one sample; whatever it raises fails the sample with the traceback, never the run."""
    try:
        value = fn(answer, context)
    except Exception as exc:  # user code: any exception is the check's failure on this sample
        # The first frame is this call; the user's own frames are what help.
        frames = exc.__traceback__.tb_next if exc.__traceback__ else None
        tb = "".join(traceback.format_exception(type(exc), exc, frames))
        return CheckOutcome(label, False, error=f"raised {type(exc).__name__}: {exc}", traceback=tb, builtin=builtin)
    outcome = verdict(value, label, minimum)
    return replace(outcome, builtin=True) if builtin else outcome
