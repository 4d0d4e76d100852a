"""The metrics of model-graded checks: how much a judge agrees with itself across its repeats."""

from __future__ import annotations

from evalharness.judging import kappa_metric, unanimous_metric
from evalharness.scoring.catalogue.model import CellValue, Metric, Shown, register

for _metric in (
    Metric("judge_agreement", "rate", "quality", "judge unanimous", "Share of model-graded checks (`expect.judge`, "
           "`judge_score`) whose judge repeats all gave the same vote (pass, fail or unparsable); needs a judge "
           "with `repeats` >= 2.", "share of graded checks", CellValue(unanimous_metric), higher_is_better=True,
           title="judge agreement (unanimous)", fields=("value", "ci95", "n", "successes", "unit"),
           table=Shown(7)),
    Metric("judge_kappa", "number", "quality", "judge kappa", "Fleiss' kappa of the judge repeats' votes over the "
           "cell's model-graded checks: 1 is perfect agreement, 0 what chance gives; undefined (null) when every "
           "vote was the same.", "kappa", CellValue(kappa_metric), higher_is_better=True,
           fields=("value", "n", "unit"), table=Shown(8)),
):
    register(_metric)
