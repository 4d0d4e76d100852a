"""Config files: the typed model, and loading with errors that name file, key path and line."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalharness.errors import ConfigError
from evalharness.executor import check_executor
from evalharness.judgeconfig import check_judges
from evalharness.load.options import LEVEL_KEYS, LoadOptions
from evalharness.params import PARAM_NAMES, RequestParams
from evalharness.proxy import check_proxy_url
from evalharness.scoring import catalogue
from evalharness.scoring.catalogue import split_metric
from evalharness.suites import Suite, load_suite
from evalharness.thinking import SwitchMessage, ThinkingVia, normalize_thinking
from evalharness.yamlsrc import KeyPath, YamlDoc, describe_error, load_yaml, parse_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ThinkingOptions(_Strict):
    """How this target switches Qwen3's thinking mode for ``thinking: on | off``."""

    via: ThinkingVia = "chat_template_kwargs"
    # Where the soft switch goes (``via: soft_switch | both``): appended to the last message of this role.
    message: SwitchMessage = "user"


class Pricing(_Strict):
    """Price per 1,000 tokens; cost is computed from the usage the server reports (or, where it reports
    none, from the tokens counted with its tokenizer).

    ``cached_input_per_1k`` prices the prompt tokens a server reports as served from its prompt cache
    (``usage.prompt_tokens_details.cached_tokens``); unset, they cost the same as other prompt tokens.
    """

    currency: str = "USD"
    input_per_1k: float = Field(0.0, ge=0)
    output_per_1k: float = Field(0.0, ge=0)
    cached_input_per_1k: float | None = Field(None, ge=0)


class TargetRun(_Strict):
    """A target's own limits, over the config's ``run``: a slow provider does not hold back the others."""

    concurrency: int | None = Field(None, ge=1, le=4096)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)


def _endpoint_problem(target: Endpoint) -> str | None:
    """What an endpoint lacks, if anything."""
    if target.kind == "openai":
        if not target.base_url and not target.base_url_env:
            return "base_url (or base_url_env) is required unless kind is 'local'"
        if not target.model:
            return "model is required unless kind is 'local'"
    elif target.proxy:
        return "the local target runs on this machine and is reached directly; remove proxy"
    return None


class Endpoint(_Strict):
    """An OpenAI-compatible endpoint, or ``kind: local`` for the bundled model: what a target and a judge
    both are."""

    kind: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    #: The variable that holds base_url (e.g. a self-hosted server's address); set, it wins over base_url.
    base_url_env: str | None = Field(None, min_length=1)
    model: str | None = None
    # The variable that holds the API key; null (or left out): the target needs no key.
    api_key_env: str | None = Field(None, min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    #: The proxy requests go through (``http://[USER:PASSWORD@]HOST:PORT``; also https://, socks5://). Unset or
    #: null: the environment's (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY); ``""``: none, whatever it says.
    proxy: str | None = None
    #: Where the model server's tokenize endpoint is, when ``base_url`` is a gateway that does not pass it on
    #: (its root, e.g. http://127.0.0.1:8080): counted usage and the probe's logit_bias use it.
    tokenizer_url: str | None = Field(None, pattern=r"^https?://")
    n_ctx: int = Field(2048, ge=256)
    n_threads: int | None = Field(None, ge=1, le=256)
    startup_timeout_s: float = Field(180.0, gt=0)
    thinking: ThinkingOptions = Field(default_factory=ThinkingOptions)

    @model_validator(mode="after")
    def _needs_endpoint(self) -> Endpoint:
        problem = _endpoint_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        return check_proxy_url(value) if value else value

    @field_validator("headers")
    @classmethod
    def _no_auth_header(cls, value: dict[str, str]) -> dict[str, str]:
        if any(k.lower() == "authorization" for k in value):
            raise ValueError("put the API key in the environment and name it with api_key_env, "
                             "not in headers (configs are stored with the run)")
        return value


class Target(Endpoint):
    """Where requests go: an OpenAI-compatible endpoint, or ``kind: local`` for the bundled model.

    One of ``targets:`` also has a ``name`` (the value of the ``target`` axis), its own ``pricing`` and
    ``run`` limits, ``extra_body`` merged into every request it gets, a ``params`` map (a parameter renamed
    for this server, or dropped with null) and ``optional`` (a target that is down or has no key does not
    fail the run).
    """

    name: str | None = Field(None, pattern=r"^[^\s=]+$")
    pricing: Pricing | None = None
    run: TargetRun = Field(default_factory=TargetRun)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    #: Per-target parameter names: ``{repetition_penalty: repeat_penalty}`` renames, ``{seed: null}`` drops.
    params: dict[str, str | None] = Field(default_factory=dict)
    optional: bool = False

    @property
    def label(self) -> str:
        """The target's name: as given, else ``local`` for the bundled model, else its model."""
        return self.name or ("local" if self.kind == "local" else str(self.model))


class Judge(Endpoint):
    """A model that grades answers (``expect.judge`` / ``judge_score``): an endpoint written as a target is
    (``kind: local`` works), or ``target: NAME`` for one the config evaluates (``target``: the config's own).

    ``params`` are sent with every judge request (``response_format: {type: json_object}`` too unless they
    set ``response_format``; null sends none); each verdict is asked ``repeats`` times and the majority
    counts. ``template`` is a jinja2 file (relative to the config) for the judge's prompt.
    """

    target: str | None = Field(None, min_length=1)
    params: RequestParams = Field(default_factory=RequestParams)
    repeats: int = Field(1, ge=1, le=25)
    template: str | None = Field(None, min_length=1)
    pricing: Pricing | None = None

    @model_validator(mode="after")
    def _needs_endpoint(self) -> Judge:
        if self.target is not None:
            if self.base_url or self.kind != "openai" or self.model:
                raise ValueError("a judge is either target: NAME or an endpoint (base_url and model, or "
                                 "kind: local), not both")
            return self
        problem = _endpoint_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class JudgeCompare(_Strict):
    """``judge_compare``: a judge says, case by case, whether cell ``b``'s answer beats cell ``a``'s on
    ``rubric`` (each pair shown in both orders); ``a`` and ``b`` match one cell each, as a gate's ``where``."""

    a: dict[str, Any]
    b: dict[str, Any]
    rubric: str = Field(min_length=1)
    judge: str = "default"


class RunOptions(_Strict):
    """How the runner behaves."""

    concurrency: int = Field(4, ge=1, le=4096)
    stream: bool = True
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    # The longest wait before a retry that a server's Retry-After (or the like) can ask for; a longer one
    # is cut to this (it is recorded as asked and as waited).
    max_retry_wait_s: float = Field(60.0, gt=0, le=3600)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    budget: float | None = Field(None, ge=0)
    #: Where the requests are sent from: this process (``local``) or workers on a Ray cluster (``ray``,
    #: rayrun.py; ``ray_address`` unset starts a local Ray). ``ray_workers`` splits concurrency, rpm and tpm.
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, min_length=1)
    ray_workers: int = Field(2, ge=1, le=1024)


class Gate(_Strict):
    """A pass/fail rule on a metric: per matching cell, or on the run totals (``metric: totals.cost``).

    With ``baseline`` (a run directory, relative to this config's folder, or ``previous``: the latest earlier
    complete run of this config) it is a regression check instead: it fails when the metric got worse than
    the baseline by more than ``max_drop`` (rates, in rate points: 0.05 = 5 points) or ``max_rise``
    (``error_rate`` in rate points; latencies relative: 0.2 = 20% slower), judged on its 95% interval.

    With ``per_case: true`` the bound applies to each case's own share of its samples within each matching
    cell (``{metric: pass_rate, per_case: true, min: 0.9}``: no case may pass fewer than 90% of its repeats).
    """

    metric: str
    where: dict[str, Any] = Field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    baseline: str | None = Field(None, min_length=1)
    max_drop: float | None = Field(None, ge=0)
    max_rise: float | None = Field(None, ge=0)
    per_case: bool = False
    #: The smallest sample the gate may judge: a cell whose measured n (the metric's samples; for a per-case
    #: gate, all its cases' together) is smaller fails the gate instead of passing on a sliver of the plan.
    min_n: int | None = Field(None, ge=1)
    #: The question a baseline gate asks: did *this suite* change (``suite``, the default: cases fixed,
    #: repeats random) or would *cases like these* (``cases``: clustered by case, needs many cases).
    population: Literal["suite", "cases"] = "suite"

    @model_validator(mode="after")
    def _has_bound(self) -> Gate:
        if self.min_n is not None and (self.baseline is not None or self.metric.startswith("totals.")):
            raise ValueError("min_n bounds the sample a cell's metric was measured on: it applies to a gate with "
                             "min or max on a cell metric (not totals.*, not a baseline gate)")
        if self.baseline is None:
            if self.population != "suite":
                raise ValueError("population: cases applies to a baseline gate (one with baseline: DIR or previous)")
            if self.max_drop is not None or self.max_rise is not None:
                raise ValueError("max_drop and max_rise compare with a baseline run: add baseline: DIR or previous")
            if self.min is None and self.max is None:
                raise ValueError("a gate needs min or max (or baseline with max_drop or max_rise)")
        else:
            if self.min is not None or self.max is not None:
                raise ValueError("a baseline gate takes max_drop or max_rise, not min or max")
            if (self.max_drop is None) == (self.max_rise is None):
                raise ValueError("a baseline gate needs exactly one of max_drop or max_rise")
        return self


class SuiteRef(_Strict):
    """A suite file and which of its cases to run: those listed in ``cases`` and/or tagged with one of ``tags``."""

    path: str
    cases: list[str] | None = Field(None, min_length=1)
    tags: list[str] | None = Field(None, min_length=1)


class Config(_Strict):
    """A whole config file, as written (suites still as paths)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    #: One target (``target:``) or several (``targets:``, an axis of the grid); either way ``targets`` holds
    #: them all once validated, and ``target`` the first.
    target: Target = None  # type: ignore[assignment]  # set from targets when only they are given
    targets: list[Target] = Field(default_factory=list)
    #: The target the others are compared with (its name); unset: the first.
    compare_to: str | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    suites: list[str | SuiteRef] = Field(min_length=1)
    defaults: RequestParams = Field(default_factory=RequestParams)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    repeats: int = Field(1, ge=1, le=10_000)
    # The k of pass_at_k and pass_hat_k; unset, it is the repeats ("did every repeat pass?").
    pass_k: int | None = Field(None, ge=1)
    run: RunOptions = Field(default_factory=RunOptions)
    gates: list[Gate] = Field(default_factory=list)
    #: Load benchmarking: each grid point swept over load levels (evalharness/load).
    load: LoadOptions | None = None
    #: Models that grade answers, by name; a check uses ``default`` unless it names another.
    judges: dict[str, Judge] = Field(default_factory=dict)
    #: Pairwise comparisons of two cells' answers by a judge.
    judge_compare: list[JudgeCompare] = Field(default_factory=list)

    @field_validator("grid")
    @classmethod
    def _grid_axes(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for axis, values in grid.items():
            if axis not in PARAM_NAMES:
                raise ValueError(f"unknown grid axis {axis!r}; an axis is a request parameter "
                                 f"({', '.join(sorted(PARAM_NAMES))})")
            if not values:
                raise ValueError(f"grid axis {axis!r} has no values")
        if "thinking" in grid:
            # An unquoted `on`/`off` in YAML is a boolean; cells and gates compare the words.
            grid["thinking"] = [normalize_thinking(v) for v in grid["thinking"]]
        return grid

    @model_validator(mode="before")
    @classmethod
    def _one_way_to_say_target(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "target" in data and "targets" in data:
                raise ValueError("give target (one) or targets (a list), not both")
            if "target" not in data and "targets" not in data:
                raise ValueError("a config needs target (one) or targets (a list of named targets)")
        return data

    @model_validator(mode="after")
    def _targets_list(self) -> Config:
        if self.target is not None and not self.targets:
            self.targets = [self.target]
        elif self.targets:
            self.target = self.targets[0]
        return self

    @model_validator(mode="after")
    def _gate_thinking_words(self) -> Config:
        for gate in self.gates:
            if "thinking" in gate.where:
                gate.where["thinking"] = normalize_thinking(gate.where["thinking"])
        return self


class LoadedConfig(BaseModel):
    """A validated config with its suites loaded and its source file known."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    #: The config file; None for a config given as a mapping.
    path: Path | None
    #: Where the config's paths are relative to: the file's folder, or a mapping's base_dir.
    folder: Path
    config: Config
    suites: list[Suite]
    raw: dict[str, Any]
    # Where target.api_key_env is written, for the error when its variable is unset.
    api_key_line: int | None = None
    # The same for each target, by name.
    api_key_lines: dict[str, int | None] = Field(default_factory=dict)

    def skipped(self, target: Target) -> str | None:
        """Why an optional target is left out of this run (its key's or address's variable is unset), or None."""
        if not target.optional or target.kind == "local":
            return None
        for env, what in ((target.api_key_env, "its API key"), (target.base_url_env, "its address")):
            if env and not os.environ.get(env) and not (what == "its address" and target.base_url):
                return f"skipped: {env} ({what}) is not set, and the target is optional"
        return None

    def active_targets(self) -> list[Target]:
        """The targets this run sends to: every target but the optional ones without their key."""
        return [t for t in self.config.targets if self.skipped(t) is None]

    def api_key(self, target: Target | None = None) -> str | None:
        """The API key from the environment variable the config names (never stored).

        A variable that is named but unset or empty is a ConfigError (exit 2) before anything is sent: the
        requests would go without a key and fail for a reason nobody sees. The bundled local server takes no
        key, so a local target never needs one.
        """
        target = target or self.config.target
        address = target.base_url_env
        if address and os.environ.get(address):
            target.base_url = os.environ[address]
        elif address and not target.base_url and target.kind != "local":
            raise ConfigError(f"{address} is not set in this environment, so target {target.label} has no address",
                              file=str(self.path) if self.path else None, key="base_url_env",
                              hint=f"export {address}=http://HOST:PORT/v1, or give the target optional: true "
                                   "to run without it")
        env = target.api_key_env
        key = os.environ.get(env) if env else None
        if env and not key and target.kind != "local":
            many = len(self.config.targets) > 1 or "targets" in self.raw
            where = (f"targets[{self.config.targets.index(target)}].api_key_env" if many else "target.api_key_env")
            raise ConfigError(
                f"{env} is not set in this environment (or is empty), so the requests to {target.model} at "
                f"{target.base_url} would carry no API key", file=str(self.path) if self.path else None,
                key=where,
                line=self.api_key_lines.get(target.label, self.api_key_line),
                hint=f"export {env}=<your key>; for a target that needs no key, write api_key_env: null"
                     + ("; to run without this target when its key is absent, give it optional: true"
                        if many else ""))
        return key or None


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Load, validate and resolve a config file and its suites, with ``overrides`` merged over the file
    (see ``merge_overrides``)."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("a config must be a YAML mapping (name, target, suites, ...)", file=str(path), line=1)
    if overrides:
        doc.data, doc.overridden = merge_overrides(doc.data, overrides)
    return _resolve(doc, path.resolve(), path.parent)


def config_from_mapping(data: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None,
                        overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Validate and resolve a config given as a mapping, as a file would be: paths in it are relative to
    ``base_dir`` (default: the current directory); errors name the key path (there is no file or line)."""
    if not isinstance(data, Mapping):
        raise ConfigError("a config must be a mapping (name, target, suites, ...)")
    folder = Path(base_dir) if base_dir is not None else Path.cwd()
    merged, overridden = merge_overrides(dict(data), overrides or {})
    return _resolve(YamlDoc(path=folder, data=merged, name="<config>", overridden=overridden), None, folder)


def merge_overrides(base: dict[str, Any], overrides: Mapping[str, Any]
                    ) -> tuple[dict[str, Any], frozenset[KeyPath]]:
    """``overrides`` merged over ``base`` (neither is changed), and the key paths the overrides set.

    A mapping merges into the mapping under the same key, key by key, at any depth; any other value (a
    list, a number, a string, None) replaces what was there: ``{"defaults": {"max_tokens": 8}}`` keeps the
    other defaults, ``{"grid": {"seed": [1, 2]}}`` replaces that axis's values, ``{"gates": []}`` drops
    every gate.
    """
    merged = copy.deepcopy(base)
    paths: set[KeyPath] = set()

    def merge(into: dict[str, Any], over: Mapping[str, Any], at: KeyPath) -> None:
        for key, value in over.items():
            here = (*at, key)
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                merge(into[key], value, here)
            else:
                into[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
                paths.add(here)

    merge(merged, overrides, ())
    return merged, frozenset(paths)


def _resolve(doc: YamlDoc, path: Path | None, folder: Path) -> LoadedConfig:
    """Validate a parsed config and load its suites; ``folder`` is where its paths are relative to."""
    config: Config = parse_model(doc, Config, doc.data)
    for axis, values in config.grid.items():
        seen_values: set[str] = set()
        for i, value in enumerate(values):
            try:
                RequestParams.model_validate({axis: value})
            except ValidationError as exc:
                raise doc.error(("grid", axis, i), describe_error(exc.errors()[0])) from exc
            text = json.dumps(value, sort_keys=True)
            if text in seen_values:
                raise doc.error(("grid", axis, i), "repeats an earlier value of this axis",
                                hint="each cell of the grid must differ; use repeats for more samples")
            seen_values.add(text)
    suites: list[Suite] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(config.suites):
        ref = SuiteRef(path=entry) if isinstance(entry, str) else entry
        suite_path = (folder / ref.path).resolve()
        if not suite_path.is_file():
            raise doc.error(("suites", i), f"suite file not found: {ref.path} (looked in {suite_path})",
                            hint="paths are relative to the config file's folder" if path else
                                 "paths are relative to base_dir, or the current directory without it")
        suite = _select(doc, i, ref, load_suite(suite_path))
        if suite.name in seen:
            raise doc.error(("suites", i), f"two suites are named {suite.name!r}")
        seen[suite.name] = i
        suites.append(suite)
    check_judges(doc, config, suites, folder)
    if config.pass_k is not None and config.pass_k > config.repeats:
        raise doc.error(("pass_k",), f"pass_k ({config.pass_k}) exceeds repeats ({config.repeats})",
                        hint="pass@k and pass^k are estimated from at least k samples of each case")
    _check_targets(doc, config)
    check_executor(doc, config)
    names = [t.label for t in config.targets]
    for i, gate in enumerate(config.gates):
        for key in gate.where:
            if key == "target":
                if gate.where[key] not in names:
                    raise doc.error(("gates", i, "where", key), f"no target is named {gate.where[key]!r}; "
                                    f"the targets are {', '.join(names)}")
            elif key not in config.grid and key not in PARAM_NAMES and not (config.load and key in LEVEL_KEYS):
                raise doc.error(("gates", i, "where", key), f"unknown parameter {key!r} in where")
        problem = (_capacity_gate_problem(gate, config.load) if gate.metric.startswith("capacity.")
                   else _gate_problem(gate, folder))
        if problem:
            raise doc.error(("gates", i, problem[0]), problem[1])
    many = "targets" in doc.data
    lines = {t.label: doc.line_of(("targets", i, "api_key_env") if many else ("target", "api_key_env"))
             for i, t in enumerate(config.targets)} if path else {}
    return LoadedConfig(path=path, folder=folder.resolve(), config=config, suites=suites, raw=doc.data,
                        api_key_line=lines.get(config.target.label), api_key_lines=lines)


def _check_targets(doc: YamlDoc, config: Config) -> None:
    """Targets have distinct names, ``compare_to`` names one, and ``params`` maps only request parameters."""
    if "targets" in doc.data and not config.targets:
        raise doc.error(("targets",), "targets is empty; list at least one target")
    seen: set[str] = set()
    for i, target in enumerate(config.targets):
        if target.label in seen:
            raise doc.error(("targets", i, "name"), f"two targets are named {target.label!r}",
                            hint="give each target its own name: it is the value of the target axis")
        seen.add(target.label)
        if target.pricing is not None:
            if "currency" not in target.pricing.model_fields_set:
                target.pricing.currency = config.pricing.currency
            elif target.pricing.currency != config.pricing.currency:
                raise doc.error(("targets", i, "pricing", "currency"),
                                f"{target.pricing.currency} differs from the config's pricing currency "
                                f"{config.pricing.currency}; a run's costs add up in one currency",
                                hint="convert this target's prices, or set pricing.currency for the config")
        for key in target.params:
            if key not in PARAM_NAMES:
                raise doc.error(("targets", i, "params", key), f"unknown parameter {key!r} in params; it maps "
                                f"a request parameter to this target's name for it (or null to drop it)")
    if config.compare_to is not None and config.compare_to not in seen:
        raise doc.error(("compare_to",), f"no target is named {config.compare_to!r}; the targets are "
                        f"{', '.join(t.label for t in config.targets)}")


def _select(doc: YamlDoc, i: int, ref: SuiteRef, suite: Suite) -> Suite:
    """The suite with only the cases ``ref`` picks (all of them when it picks none)."""
    if ref.cases is None and ref.tags is None:
        return suite
    known = {case.id for case in suite.cases}
    for j, case_id in enumerate(ref.cases or ()):
        if case_id not in known:
            raise doc.error(("suites", i, "cases", j), f"{ref.path} has no case {case_id!r}")
    keep = {case.id for case in suite.cases
            if case.id in (ref.cases or ()) or set(case.tags) & set(ref.tags or ())}
    if not keep:
        raise doc.error(("suites", i, "tags"), f"no case in {ref.path} has any of the tags {ref.tags}")
    return suite.only(keep)


def _gate_problem(gate: Gate, folder: Path) -> tuple[str, str] | None:
    """What is wrong with a gate's metric or baseline, as (key, message); None when nothing is."""
    name = gate.metric.partition(".")[0]
    if gate.per_case:
        return _per_case_problem(gate)
    if gate.baseline is None:
        if name != "totals" and catalogue.get(name) is None:
            return "metric", (f"unknown metric {name!r}; metrics are {', '.join(catalogue.names())}, "
                              "or totals.<field>")
        return None
    try:
        name, _ = split_metric(gate.metric)
    except ValueError as exc:
        return "metric", str(exc)
    metric = catalogue.get(name)
    assert metric is not None  # split_metric accepted the name
    if metric.higher_is_better and gate.max_rise is not None:
        return "max_rise", f"higher {name} is better, so a baseline gate limits its fall: use max_drop"
    if not metric.higher_is_better and gate.max_drop is not None:
        return "max_drop", f"lower {name} is better, so a baseline gate limits its rise: use max_rise"
    if gate.baseline != "previous":
        run_dir = Path(gate.baseline).expanduser()
        run_dir = run_dir if run_dir.is_absolute() else folder / run_dir
        if not (run_dir / "manifest.json").is_file():
            return "baseline", (f"{gate.baseline} is not a run directory (no manifest.json in {run_dir}); "
                                f"give a run's folder, relative to this config, or previous")
    return None


def _capacity_gate_problem(gate: Gate, load: LoadOptions | None) -> tuple[str, str] | None:
    """What keeps a ``capacity.max_rate`` gate from bounding a load run's capacity search, if anything."""
    if gate.metric != "capacity.max_rate":
        return "metric", f"{gate.metric}: the capacity search gives capacity.max_rate"
    if load is None or load.search is None:
        return "metric", "capacity.max_rate needs a capacity search: load: {..., search: {slo_attainment: 0.9}}"
    if gate.baseline is not None or gate.per_case:
        return "metric", "capacity.max_rate takes min or max (not baseline, not per_case)"
    return None


def _per_case_problem(gate: Gate) -> tuple[str, str] | None:
    """What keeps a ``per_case`` gate from bounding each case's share of its samples, if anything."""
    if gate.baseline is not None:
        return "per_case", ("per_case bounds each case's share within this run; a baseline gate compares runs "
                            "(remove per_case, or baseline with max_drop / max_rise)")
    if gate.metric not in catalogue.per_case_rates():
        return "per_case", (f"per_case works with the rates a case's samples score: "
                            f"{', '.join(catalogue.per_case_rates())}; "
                            f"not {gate.metric}")
    return None
