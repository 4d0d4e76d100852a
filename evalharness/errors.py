"""The one error hierarchy of evalharness.

    EvalHarnessError                 every error a user may see; ``exit_code`` is what the CLI returns
    ├── ConfigError (exit 2)         a config or suite is wrong: names file, key path and line
    ├── UsageError (exit 2)          the command line is wrong (missing run dir, bad flag combination)
    └── RunAborted (exit 3)          the run could not complete
        ├── TargetUnavailable        the target never answered (local server failed to start, unreachable)
        │   ├── TargetCrashed        the local server we started died (exit code or signal, its log's tail)
        │   └── TargetUnreachable    the target stopped answering mid-run (a dead backend behind a gateway)
        ├── BudgetExhausted          the next request could push spend past ``run.budget``
        ├── RunInterrupted           Ctrl-C / SIGTERM
        └── SystematicFailure        every request fails the same way (e.g. 401): retrying is pointless

Errors from libraries (httpx, yaml, pydantic) are translated at one boundary each and re-raised ``from``
the original. A failed request is not an exception at this level: it is a record with an error kind.
"""

from __future__ import annotations


class EvalHarnessError(Exception):
    """Base of every error evalharness reports to a user."""

    exit_code = 3


class ConfigError(EvalHarnessError):
    """A config or suite file is invalid. Carries where: file, key path and line (1-based)."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None, hint: str | None = None) -> None:
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: "
        if self.key:
            text += f"{self.key}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(EvalHarnessError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class RunAborted(EvalHarnessError):
    """The run could not complete; what finished is still stored and reported."""

    exit_code = 3


class TargetUnavailable(RunAborted):
    """The target could not be started or reached."""


class TargetCrashed(TargetUnavailable):
    """The bundled local server, started by the harness, exited or was killed while starting or serving.

    Said as such, never as "cannot connect": the message names the exit code or signal, ends with the
    last lines of the server's log and its path, and hints at a cause where the signal suggests one.
    """


class TargetUnreachable(TargetUnavailable):
    """Requests in a row failed as if nothing were there (refused connections, timeouts, a gateway's
    "Connection error"), and a check request failed too: the run stops instead of retrying every item."""


class BudgetExhausted(RunAborted):
    """Starting another request could push the spend past the budget."""


class RunInterrupted(RunAborted):
    """The user interrupted the run (Ctrl-C or SIGTERM)."""


class SystematicFailure(RunAborted):
    """Every request so far failed the same way; the run stops instead of paying for more failures."""
