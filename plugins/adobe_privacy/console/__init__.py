"""The request console: a FastAPI app and a page inside Airflow's UI, over the cross-run request index."""
