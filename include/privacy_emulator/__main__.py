"""Command line: ``python -m privacy_emulator --host 127.0.0.1 --port PORT --db PATH [options]``.

Settings are layered: defaults < ``--realistic`` preset < ``--config settings.json`` < explicit flags.
The blob server of the legacy download mode listens on ``--blob-port`` (0 picks a free port). On start
one JSON line ``{"event": "listening", "base_url": ..., "blob_base_url": ...}`` is printed to stdout.
Access logs are off by default: URLs can carry IMS query parameters and blob download tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from privacy_emulator.app import build_state, create_app_for_state, create_blob_app
from privacy_emulator.settings import REALISTIC_PRESET, EmulatorSettings

# Settings that are also command-line flags (--name-with-dashes), with their help text.
SETTING_FLAGS = {
    "client_id": "OAuth client id (also the x-api-key).",
    "client_secret": "OAuth client secret.",
    "org_id": "IMS org id the client's tokens belong to.",
    "token_ttl_seconds": "Token lifetime in seconds on the emulator clock (default 86399).",
    "seed": "Seed for every pseudo-random choice (lifecycle jitter, outcomes, faults, ZIP filler).",
    "processing_after_seconds": "Seconds until a job is processing (default 2).",
    "complete_after_seconds": "Seconds until a job is complete or error (default 5).",
    "jitter_ratio": "Per-job delays stretch by up to this fraction (default 0.2).",
    "error_rate": "Fraction of jobs that end in error (default 0).",
    "page_base": "First page number of list endpoints: 0 (Adobe's docs) or 1.",
    "default_page_size": "List page size when size is not given (default 100; Adobe's OAS: 25).",
    "max_page_size": "Largest accepted list size; above it a 400 naming size (docs 1000, the default; OAS 100).",
    "download_url_key": "The one key of a job's link: downloadUrl (default) or downloadURL.",
    "gateway_requests_per_minute": "Gateway throttle: API calls a minute before 429 429050 (default 0 = off).",
    "workorder_complete_after_seconds": "Seconds until a work order is completed or failed (default 8).",
    "workorder_failure_rate": "Fraction of work orders that end failed (default 0).",
    "workorder_max_identities": "Identities per work order (default 100000).",
    "workorder_daily_identities": "dailyConsumerDeleteIdentitiesQuota (default 1000000).",
    "workorder_monthly_identities": "monthlyConsumerDeleteIdentitiesQuota (default 2000000).",
    "daily_job_cap": "Jobs per UTC day of the emulator clock before POST /jobs answers 400 (default 20000).",
    "content_bytes": "Size of each access job's ZIP payload in bytes (default 16384).",
}
FLAG_TYPES = {
    "client_id": str,
    "client_secret": str,
    "org_id": str,
    "page_base": int,
    "token_ttl_seconds": int,
    "seed": int,
    "max_page_size": int,
    "default_page_size": int,
    "download_url_key": str,
    "gateway_requests_per_minute": int,
    "workorder_max_identities": int,
    "workorder_daily_identities": int,
    "workorder_monthly_identities": int,
    "daily_job_cap": int,
    "content_bytes": int,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privacy_emulator",
        description="Run the local Adobe Privacy Service, Data Hygiene and IMS emulator.",
        epilog="Settings are layered: defaults < --realistic < --config file < explicit flags.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (keep it loopback).")
    parser.add_argument(
        "--port", type=int, default=8787, help="Port of the API, IMS and admin server (0 = free)."
    )
    parser.add_argument(
        "--blob-port", type=int, default=0, help="Port of the legacy blob download server (0 = free)."
    )
    parser.add_argument("--db", type=Path, default=Path("privacy-emulator.sqlite"), help="SQLite state file.")
    parser.add_argument("--config", type=Path, help="JSON file of settings (see EmulatorSettings).")
    parser.add_argument("--realistic", action="store_true", help="Lifecycle in days instead of seconds.")
    parser.add_argument(
        "--legacy-download",
        action="store_true",
        default=None,
        help="downloadUrl points to the unauthenticated blob server.",
    )
    parser.add_argument(
        "--accept-legacy-regulations",
        action="store_true",
        default=None,
        help="Map legacy regulation values to their replacements instead of a 400.",
    )
    parser.add_argument(
        "--adobe-known-bugs",
        action="store_true",
        default=None,
        help="Flagged-org bugs: a download link on every job detail, before completion and on deletes.",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level.")
    parser.add_argument(
        "--access-log", action="store_true", help="Log every request line (may contain tokens)."
    )
    for name, help_text in SETTING_FLAGS.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=FLAG_TYPES.get(name, float), help=help_text
        )
    return parser


def settings_from_args(args: argparse.Namespace) -> EmulatorSettings:
    values: dict = {}
    if args.realistic:
        values.update(REALISTIC_PRESET)
    if args.config:
        values.update(json.loads(args.config.read_text(encoding="utf-8")))
    for name in (*SETTING_FLAGS, "legacy_download", "accept_legacy_regulations", "adobe_known_bugs"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return EmulatorSettings.model_validate(values)


def bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every response pays a 40 ms Nagle/delayed-ACK stall.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _QuietServer(uvicorn.Server):
    """The blob server: the main server owns the signal handlers and stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    main_socket, blob_socket = bind(args.host, args.port), bind(args.host, args.blob_port)
    base_url = f"http://{args.host}:{main_socket.getsockname()[1]}"
    blob_base_url = f"http://{args.host}:{blob_socket.getsockname()[1]}"
    state = build_state(settings, args.db, blob_base_url)
    common = {"log_level": args.log_level, "access_log": args.access_log, "lifespan": "off"}
    main_server = uvicorn.Server(uvicorn.Config(create_app_for_state(state), **common))
    blob_server = _QuietServer(uvicorn.Config(create_blob_app(state), **common))
    print(
        json.dumps({"event": "listening", "base_url": base_url, "blob_base_url": blob_base_url}), flush=True
    )
    blob_task = asyncio.create_task(blob_server.serve(sockets=[blob_socket]))
    try:
        await main_server.serve(sockets=[main_socket])
    finally:
        blob_server.should_exit = True
        await blob_task
        state.store.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
