"""Evaluation: items (`items`), how an answer is scored (`scoring`), paired comparison and the
promotion gate (`stats`), a model as judge (`judge`), and running suites on versions (`suites`).
"""

from trainer.evaluation.items import SUITES, Item, budget, items_of, prefix_order, suite_items
from trainer.evaluation.judge import Judge
from trainer.evaluation.scoring import RIGHT, right_rate, score_items
from trainer.evaluation.stats import (
    MIN_ITEMS_FOR_A_WIN,
    Verdict,
    gate,
    one_sided_p,
    paired,
    sign_test,
)
from trainer.evaluation.suites import (
    SuiteRun,
    compare,
    evaluate,
    fresh_process,
    render,
    run_suite,
    store_run,
    stored_run,
)

__all__ = [
    "MIN_ITEMS_FOR_A_WIN", "RIGHT", "SUITES", "Item", "Judge", "SuiteRun", "Verdict", "budget",
    "compare", "evaluate", "fresh_process", "gate", "items_of", "one_sided_p", "paired",
    "prefix_order", "render", "right_rate", "run_suite", "score_items", "sign_test",
    "store_run", "stored_run", "suite_items",
]  # fmt: skip
