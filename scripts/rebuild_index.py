"""Rebuild the request index from what the archive already holds, or fold the pending deltas.

    python scripts/rebuild_index.py [--archive-uri s3://bucket/prefix] [--aws-conn-id aws_default]
                                    [--sse AES256|aws:kms] [--kms-key-id KEY] [--compact-only]

Reads the ledger and every run's outputs under the archive root (so archives written before the index
existed are indexed too), writes them as one delta and compacts: the result is the same however often
it runs. `--compact-only` skips the scan and only folds the deltas the DAG steps wrote. The connection
comes from `AIRFLOW_CONN_<ID>` (a script outside a task cannot see connections stored in Airflow's
database); the defaults come from the same `AIRFLOW_VAR_*` variables the DAGs read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive-uri", default=os.environ.get("AIRFLOW_VAR_PRIVACY_ARCHIVE_URI",
                                                                 "s3://privacy-archive/privacy"))
    parser.add_argument("--aws-conn-id", default="aws_default")
    parser.add_argument("--sse", default=os.environ.get("AIRFLOW_VAR_PRIVACY_SSE", "AES256"))
    parser.add_argument("--kms-key-id", default=os.environ.get("AIRFLOW_VAR_PRIVACY_KMS_KEY_ID") or None)
    parser.add_argument("--cache-dir", default=None, help="local cache of index files (default: a temp dir)")
    parser.add_argument("--compact-only", action="store_true", help="fold the steps' deltas, do not rescan")
    args = parser.parse_args(argv)

    from adobe_privacy.index_rebuild import rebuild
    from adobe_privacy.index_store import RequestIndex
    from adobe_privacy.storage import PrivacyArchiveStore

    store = PrivacyArchiveStore(args.archive_uri, aws_conn_id=args.aws_conn_id, sse=args.sse,
                                kms_key_id=args.kms_key_id)
    if args.compact_only:
        summary = RequestIndex(store, cache_dir=args.cache_dir).compact()
    else:
        summary = rebuild(store, cache_dir=args.cache_dir)
    print(json.dumps({"archive_uri": args.archive_uri, **summary}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
