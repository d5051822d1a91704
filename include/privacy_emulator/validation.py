"""Validation of job-creation bodies (reference 2.1 and 13) for Privacy Service and hygiene record deletes.

Every problem is reported with its field path and index (``users[3].userIDs[0].type``). Messages may
quote enumerated values a caller sent (a type, an action, a regulation) only when they look like plain
codes; identity values, user keys and anything else a caller typed freely are never echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from privacy_emulator.catalog import Catalog
from privacy_emulator.errors import formatting_error

MAX_USERS = 1000
MAX_USER_IDS = 9
MAX_KEY_LENGTH = 256
MAX_REPORTED_ERRORS = 50
PLAIN_CODE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,39}$")

PRIORITIES = ("normal", "low")
ANALYTICS_DELETE_METHODS = ("anonymize", "purge")


def quoted(value: Any) -> str:
    """The value in quotes if it is safe to echo (a short plain code), otherwise a neutral phrase."""
    if isinstance(value, str) and PLAIN_CODE.match(value) and "@" not in value:
        return f"'{value}'"
    return "the given value"


def describe_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


@dataclass(frozen=True)
class JobRequestRules:
    """What one API accepts: Privacy Service jobs, or the legacy beta hygiene record deletes."""

    service: str
    actions: tuple[str, ...]
    types: tuple[str, ...]
    require_include: bool
    require_regulation: bool
    require_company_contexts: bool


@dataclass
class ValidatedUser:
    key: str
    actions: list[str]
    user_ids: list[dict]


@dataclass
class ValidatedJobRequest:
    users: list[ValidatedUser]
    include: list[str]
    regulation: str | None
    options: dict = field(default_factory=dict)
    request_id: str | None = None


class ErrorCollector:
    """Field errors in order, capped so one huge bad request gives a bounded body."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field_path: str, message: str) -> None:
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append({"field": field_path, "message": message})

    def __bool__(self) -> bool:
        return bool(self.items)


def resolve_regulation(
    value: Any, catalog: Catalog, accept_legacy: bool, errors: ErrorCollector, path: str
) -> str | None:
    """The canonical regulation code, or None after recording why it is not acceptable.

    With ``accept_legacy`` a legacy value is mapped to its replacement (and stored as such)."""
    if value is None:
        errors.add(path, "is required")
        return None
    if not isinstance(value, str) or not value:
        errors.add(path, "must be a non-empty string")
        return None
    if value in catalog.regulations:
        return value
    if value in catalog.legacy_regulations:
        replacement = catalog.legacy_regulations[value]
        if accept_legacy:
            return replacement
        errors.add(
            path,
            f"{quoted(value)} is a legacy regulation value that is no longer accepted; use '{replacement}'",
        )
        return None
    errors.add(
        path,
        f"{quoted(value)} is not an accepted regulation; accepted values: {', '.join(catalog.regulations)}",
    )
    return None


def _object(raw: Any, path: str, errors: ErrorCollector) -> dict | None:
    """``raw`` when it is a JSON object, else None after recording what it is instead."""
    if isinstance(raw, dict):
        return raw
    errors.add(path, f"must be an object, not {describe_type(raw)}")
    return None


def _required_text(
    item: dict, name: str, path: str, errors: ErrorCollector, max_length: int | None = None
) -> bool:
    """Whether ``item[name]`` is a non-blank string (of at most ``max_length``); records why not."""
    value = item.get(name)
    if isinstance(value, str) and value.strip() and (max_length is None or len(value) <= max_length):
        return True
    limit = f" of at most {max_length} characters" if max_length is not None else ""
    errors.add(f"{path}.{name}", f"is required and must be a non-empty string{limit}")
    return False


def _resolved_namespace_id(namespace: str, id_type: str, catalog: Catalog) -> int | None:
    """The namespaceId Adobe shows: a standard namespace's, or the number itself for type namespaceId.

    Custom and integrationCode identities carry none: Adobe's examples show none there (the hygiene seed's
    "Loyalty ID", the privacy-jobs example's ``loyaltyAccount``), so the emulator invents none."""
    if id_type == "standard":
        return catalog.namespace_id(namespace)
    if id_type == "namespaceId":
        return int(namespace)
    return None


def _validate_user_id(
    raw: Any, path: str, rules: JobRequestRules, catalog: Catalog, errors: ErrorCollector
) -> dict | None:
    if (item := _object(raw, path, errors)) is None:
        return None
    namespace, value, id_type = item.get("namespace"), item.get("value"), item.get("type")
    ok = _required_text(item, "namespace", path, errors)
    ok = _required_text(item, "value", path, errors) and ok
    if id_type is None:
        errors.add(f"{path}.type", f"is required; one of {', '.join(rules.types)}")
        ok = False
    elif id_type not in rules.types:
        errors.add(f"{path}.type", f"{quoted(id_type)} is not one of {', '.join(rules.types)}")
        ok = False
    elif id_type == "namespaceId" and isinstance(namespace, str) and not namespace.isdigit():
        errors.add(f"{path}.namespace", "must be a numeric namespace ID when type is namespaceId")
        ok = False
    deleted = item.get("isDeletedClientSide", False)
    if not isinstance(deleted, bool):
        errors.add(f"{path}.isDeletedClientSide", "must be a boolean")
        ok = False
    if not ok:
        return None
    identity = {"namespace": namespace, "value": value, "type": id_type}
    namespace_id = _resolved_namespace_id(namespace, id_type, catalog)
    if namespace_id is not None:
        identity["namespaceId"] = namespace_id
    identity["isDeletedClientSide"] = deleted
    return identity


def _validate_actions(
    raw: Any, path: str, rules: JobRequestRules, errors: ErrorCollector
) -> list[str] | None:
    if not isinstance(raw, list) or not raw:
        errors.add(path, f"is required and must be a non-empty array of {', '.join(rules.actions)}")
        return None
    actions: list[str] = []
    for index, action in enumerate(raw):
        if action == "opt-out-of-sale" and "opt-out-of-sale" not in rules.actions:
            errors.add(f"{path}[{index}]", "'opt-out-of-sale' is not a job action; use POST /consent")
        elif action not in rules.actions:
            errors.add(f"{path}[{index}]", f"{quoted(action)} is not one of {', '.join(rules.actions)}")
        elif action in actions:
            errors.add(f"{path}[{index}]", f"duplicate action '{action}'")
        else:
            actions.append(action)
    return actions if len(actions) == len(raw) else None


def _validate_user(
    raw: Any, path: str, rules: JobRequestRules, catalog: Catalog, errors: ErrorCollector
) -> ValidatedUser | None:
    if (item := _object(raw, path, errors)) is None:
        return None
    key = item.get("key")
    key_ok = _required_text(item, "key", path, errors, max_length=MAX_KEY_LENGTH)
    actions = _validate_actions(item.get("action"), f"{path}.action", rules, errors)
    raw_ids = item.get("userIDs")
    identities: list[dict] = []
    ids_ok = isinstance(raw_ids, list) and 1 <= len(raw_ids) <= MAX_USER_IDS
    if not ids_ok:
        errors.add(f"{path}.userIDs", f"is required and must hold 1 to {MAX_USER_IDS} identities")
    else:
        for index, raw_id in enumerate(raw_ids):
            identity = _validate_user_id(raw_id, f"{path}.userIDs[{index}]", rules, catalog, errors)
            if identity is None:
                ids_ok = False
            else:
                identities.append(identity)
    if not (key_ok and actions is not None and ids_ok):
        return None
    return ValidatedUser(key=key, actions=actions, user_ids=identities)


def _validate_company_contexts(raw: Any, org_id: str, errors: ErrorCollector) -> None:
    if not isinstance(raw, list) or not raw:
        errors.add("companyContexts", "is required and must hold at least one {namespace, value} item")
        return
    for index, context in enumerate(raw):
        if (
            not isinstance(context, dict)
            or not isinstance(context.get("namespace"), str)
            or not isinstance(context.get("value"), str)
        ):
            errors.add(f"companyContexts[{index}]", "must be an object with string namespace and value")
    has_org = any(
        isinstance(context, dict)
        and context.get("namespace") == "imsOrgID"
        and context.get("value") == org_id
        for context in raw
    )
    if not has_org:
        errors.add("companyContexts", "needs an imsOrgID entry whose value equals the x-gw-ims-org-id header")


def _validate_include(
    raw: Any, rules: JobRequestRules, catalog: Catalog, errors: ErrorCollector
) -> list[str]:
    if raw is None and not rules.require_include:
        return []
    if not isinstance(raw, list) or not raw:
        errors.add("include", "is required and must hold at least one product code")
        return []
    codes: list[str] = []
    for index, product in enumerate(raw):
        code = next(
            (
                known
                for known in catalog.products
                if isinstance(product, str) and known.lower() == product.lower()
            ),
            None,
        )
        if code is None:
            errors.add(
                f"include[{index}]",
                f"{quoted(product)} is not a known product; known: {', '.join(catalog.products)}",
            )
        elif code in codes:
            errors.add(f"include[{index}]", f"duplicate product '{code}'")
        else:
            codes.append(code)
    return codes


def _validate_options(body: dict, errors: ErrorCollector) -> dict:
    options: dict = {}
    expand = body.get("expandIds")
    if expand is not None:
        if isinstance(expand, bool) or expand in ("true", "false"):
            options["expandIds"] = expand in (True, "true")
        else:
            errors.add("expandIds", "must be a boolean")
    for name, allowed in (("priority", PRIORITIES), ("analyticsDeleteMethod", ANALYTICS_DELETE_METHODS)):
        value = body.get(name)
        if value is None:
            continue
        if value in allowed:
            options[name] = value
        else:
            errors.add(name, f"{quoted(value)} is not one of {', '.join(allowed)}")
    merge_policy = body.get("mergePolicyId")
    if merge_policy is not None:
        if (isinstance(merge_policy, int) and not isinstance(merge_policy, bool)) or (
            isinstance(merge_policy, str) and merge_policy.strip()
        ):
            options["mergePolicyId"] = merge_policy
        else:
            errors.add("mergePolicyId", "must be an integer or a non-empty string")
    region = body.get("region")
    if region is not None:
        if isinstance(region, str) and region.strip():
            options["region"] = region
        else:
            errors.add("region", "must be a non-empty string")
    return options


def validate_job_request(
    body: Any, org_id: str, rules: JobRequestRules, catalog: Catalog, accept_legacy: bool
) -> ValidatedJobRequest:
    """The request, normalised; raises a 400 ``<service>-1000-400`` naming every bad field otherwise."""
    errors = ErrorCollector()
    if not isinstance(body, dict):
        errors.add("", f"the request body must be a JSON object, not {describe_type(body)}")
        raise formatting_error(errors.items, rules.service)
    if rules.require_company_contexts or "companyContexts" in body:
        _validate_company_contexts(body.get("companyContexts"), org_id, errors)
    raw_users = body.get("users")
    users: list[ValidatedUser] = []
    if not isinstance(raw_users, list) or not raw_users:
        errors.add("users", "is required and must hold at least one user")
    elif len(raw_users) > MAX_USERS:
        errors.add("users", f"holds {len(raw_users)} users; at most {MAX_USERS} are allowed per request")
    else:
        for index, raw_user in enumerate(raw_users):
            user = _validate_user(raw_user, f"users[{index}]", rules, catalog, errors)
            if user is not None:
                users.append(user)
    include = _validate_include(body.get("include"), rules, catalog, errors)
    regulation = None
    if rules.require_regulation or body.get("regulation") is not None:
        regulation = resolve_regulation(body.get("regulation"), catalog, accept_legacy, errors, "regulation")
    options = _validate_options(body, errors)
    request_id = body.get("requestId")
    if request_id is not None and not (isinstance(request_id, str) and 0 < len(request_id.strip()) <= 100):
        errors.add("requestId", "must be a non-empty string of at most 100 characters")
    if errors:
        raise formatting_error(errors.items, rules.service)
    return ValidatedJobRequest(
        users=users, include=include, regulation=regulation, options=options, request_id=request_id
    )
