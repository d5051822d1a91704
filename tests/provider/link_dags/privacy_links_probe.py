"""A tiny DAG for the links test: operators that publish their run's links, as the pipeline's operators do.

`publish_links` runs first thing in `execute`; `fails_after_publishing` then raises, to show that a
task which fails later still carries its links (Airflow stores extra links when any attempt ends).
An operator declares exactly the links it publishes: Airflow asks every declared link for its XCom at
the end of the task, and a key never pushed is logged at ERROR ("XCom not found").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adobe_privacy.links import (
    PrivacyServiceJobsLink,
    RejectedRowsLink,
    RunFolderLink,
    RunReportLink,
    privacy_ui_target,
    publish_links,
    run_link_targets,
)
from airflow.sdk import DAG, BaseOperator

PUBLISHED = (RunFolderLink(), RunReportLink(), RejectedRowsLink(), PrivacyServiceJobsLink())


class PublishRunLinksOperator(BaseOperator):
    """Publishes the links of a run folder in `archive_uri` (report and rejects only: no chart yet)."""

    operator_extra_links = PUBLISHED
    template_fields = ("archive_uri",)

    def __init__(self, *, archive_uri: str, fail: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.archive_uri = archive_uri
        self.fail = fail

    def execute(self, context: Any) -> None:
        from adobe_privacy.storage import PrivacyArchiveStore

        store = PrivacyArchiveStore(self.archive_uri)
        root = store.key("runs", "2026-11-22", "manual")
        targets = run_link_targets(store, root, report=f"{root}/report.json", rejects=f"{root}/rejects.csv")
        publish_links(context, [*targets, privacy_ui_target()], self.log)
        if self.fail:
            raise RuntimeError("failing after the links were published")


with DAG("privacy_links_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    PublishRunLinksOperator(task_id="publishes", archive_uri="{{ var.value.links_archive_uri }}")
    PublishRunLinksOperator(
        task_id="fails_after_publishing", archive_uri="{{ var.value.links_archive_uri }}", fail=True, retries=0
    )
