"""Turn run records (results.json) into Markdown tables and PNG plots."""

from .tables import fmt_mean_std, markdown_table, summary_rows  # noqa: F401
