"""Which executor sends a run's requests (``run.executor``), and what the Ray one does not cover.

``local`` (the default) runs every request from this process (fanrun.py); ``ray`` spreads them over Ray
workers (rayrun.py). The Ray executor runs one target's plan without a load schedule or a budget; a config
asking for more is a config error here, before anything is started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evalharness.config import Config
    from evalharness.yamlsrc import YamlDoc

INSTALL = "pip install 'evalharness[ray]'"


def check_executor(doc: YamlDoc, config: Config) -> None:
    """``run.executor: ray`` (and ``load.workers`` above 1) only where they keep the run's guarantees."""
    run = config.run
    if config.load is not None and config.load.workers > 1 and run.budget is not None:
        raise doc.error(("load", "workers"), "load.workers does not enforce run.budget (each worker process "
                        "would hold a share of it)", hint="drop run.budget, or use workers: 1")
    if run.executor != "ray":
        if run.ray_address is not None:
            raise doc.error(("run", "ray_address"), "run.ray_address applies to run.executor: ray",
                            hint="add executor: ray under run, or drop ray_address")
        return
    where = ("run", "executor")
    if len(config.targets) > 1:
        raise doc.error(where, "the Ray executor runs one target; this config has "
                        f"{len(config.targets)} (targets: {', '.join(t.label for t in config.targets)})",
                        hint="run each target as its own config, or use executor: local")
    if config.load is not None:
        raise doc.error(where, "the Ray executor does not send load schedules (load:)",
                        hint="a load run's arrival schedule is kept by one process: use executor: local")
    if run.budget is not None:
        raise doc.error(where, "the Ray executor does not enforce run.budget (its workers would each hold a "
                        "share, and a worker that dies would take its share with it)",
                        hint="drop run.budget, or use executor: local")
