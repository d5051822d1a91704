"""Pure request-pipeline logic for Adobe Privacy Service: no Airflow import anywhere in this package.

The Airflow side (plugins/adobe_privacy, dags/) does the S3 and HTTP I/O and calls these modules with
byte streams and plain dicts:

- `catalog`: regulations (with legal response windows), namespaces, identity types, products.
- `models`: the frozen value types (`Identity`, `Subject`, `Reject`).
- `intake`: CSV / JSON Lines -> validated subjects + rejects (vectorised), opt-out consent bodies.
- `batching`: job shapes, deterministic batches of <= 1000 subjects, POST /jobs bodies.
- `ledger`: the exactly-once submission ledger and job recovery from the list endpoint.
- `layout`: where every object lives under the archive root.
- `status`: the job-status vocabulary (final, failed, open) shared by the wait, reconcile and deadlines.
- `clock`: the one injectable "now" (wall clock, or `as_of` for rehearsals and reruns).
- `budget`, `reconcile`: the daily job budget and reconcile's per-job decisions.
- `report`: report.json, its accounting invariants, rejects.csv, jobs.jsonl.
- `deadlines`: legal due dates, the overdue / due-soon summary and its chart.
- `archive`: hashing streams and ZIP inspection before anything is archived.
- `errors`: `ConfigurationError`, a setting that can never work (fails a task without retries).
- `sample`: a realistic generated input for the demo and the benchmarks.
"""
