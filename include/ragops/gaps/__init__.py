"""Content gaps (issue 23): the questions the knowledge base keeps failing, clustered, ranked and named.

`questions.py` reads the failed questions of a period from the registry (refused or down-voted), `clusters.py`
embeds and clusters them and names each cluster by its distinctive terms, `report.py` ranks them, finds the documents
an answer would belong in and the trend against the previous period, stores the report and posts it to Slack.
Plain Python: the `content_gaps` DAG, `ragops gaps` and the growing test set (`evaluation.growth`) call it.
"""

from ragops.gaps.report import GapCluster, GapReport, analyse, latest_report, post_report, run_gaps, store_report

__all__ = ["GapCluster", "GapReport", "analyse", "latest_report", "post_report", "run_gaps", "store_report"]
