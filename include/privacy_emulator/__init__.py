"""A faithful local stand-in for Adobe Experience Platform Privacy Service, Data Hygiene (the seed's alpha
record-delete jobs and the GA record-delete work orders) and IMS.

Adobe's Privacy Service is production-only and forbids load tests, so this package ships the server
that the demo and every integration test talk to over real HTTP. Start it with
``python -m privacy_emulator --host 127.0.0.1 --port PORT --db PATH`` (see ``--help``).

Defaults the demo and the tests rely on:

- OAuth client: ``client_id = "privacy-emulator"``, ``client_secret = "emulator-secret"``; the API key
  (``x-api-key``) is the client id, as with an Adobe Developer Console OAuth server-to-server credential.
- Organisation: ``x-gw-ims-org-id = "EMULATED0RG00000000000000@AdobeOrg"``.
- Tokens live ``86399`` s on the emulator clock; jobs are ``processing`` after 2 s and finished after 5 s
  (``--realistic`` switches to days); access ZIPs are 16 KiB; the daily job cap is 20,000.

Paths follow Adobe's (``/ims/token/v3``, ``/data/core/privacy/...``, ``/data/core/hygiene/...``); the
emulator's own control surface lives under ``/_emulator`` and needs no auth (bind it to loopback only).
"""

from __future__ import annotations

DEFAULT_CLIENT_ID = "privacy-emulator"
DEFAULT_CLIENT_SECRET = "emulator-secret"  # noqa: S105 - a published test credential, not a secret
DEFAULT_ORG_ID = "EMULATED0RG00000000000000@AdobeOrg"

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_ORG_ID"]
