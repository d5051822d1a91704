"""Pure request-pipeline logic for Adobe Privacy Service: no Airflow import anywhere in this package.

The Airflow side (plugins/adobe_privacy, dags/) does the S3 and HTTP I/O and calls these modules with
byte streams and plain dicts:

- `catalog`: regulations (with legal response windows), namespaces, identity types, products.
- `models`: the frozen value types (`Identity`, `Subject`, `Reject`).
- `intake`: CSV / JSON Lines -> validated subjects + rejects (vectorised), opt-out consent bodies.
- `batching`: job shapes, deterministic batches of <= 1000 subjects, POST /jobs bodies.
- `ledger`: the exactly-once submission ledger and job recovery from the list endpoint.
- `report`: report.json, its accounting invariants, rejects.csv, jobs.jsonl.
- `deadlines`: legal due dates, the overdue / due-soon summary and its chart.
- `archive`: hashing streams and ZIP inspection before anything is archived.
- `sample`: a realistic generated input for the demo and the benchmarks.
"""
