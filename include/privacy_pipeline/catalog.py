"""Catalogues of the values Adobe Privacy Service accepts: regulations, namespaces, id types, products.

Sources are the sections of the project's Privacy Service reference named on each table (its section
numbers), checked against Adobe's current seed list of regulations (release notes of 2025-06-18:
`tipa_tn_usa`, `mcdpa_mn_usa`). Lookups are case-insensitive where Adobe's matching is (namespaces,
products) and return the canonical code.

Regulations Adobe adds between our releases (India's DPDP Act was announced in September 2026 without
a published code) are added by operators, not by a release: the Airflow Variable
`privacy_extra_regulations` holds `{"code": window_days}`, and `with_extra_regulations` turns it into a
`RegulationCatalog` that intake and the deadline report use. Settings that can never work (an unknown
product in `include`, an unknown regulation in a param, a malformed Variable) raise
`ConfigurationError` naming the setting and the allowed values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from privacy_pipeline.errors import ConfigurationError

DEFAULT_DEADLINE_DAYS: Final = 30
"""Response window for a regulation we have no figure for (the UI's "30-day compliance window")."""

#: Current regulation codes (reference 7.2) -> legal response window in calendar days.
#: Documented by Adobe (regulations FAQ, reference 7.3): gdpr 30, ccpa 45, lgpd_bra 15, pdpa_tha 30.
#: Everything else is OUR default taken from the statute's own response window, not from Adobe:
#: US state laws 45 days (Iowa 90), HIPAA access 30, Australia APP 12 30, Quebec Law 25 30,
#: New Zealand 20 (working days in the statute; counting calendar days keeps us early), Korea PIPA 10.
#: Review with counsel before relying on them; extensions (e.g. GDPR's +60) are deliberately ignored.
REGULATION_DEADLINE_DAYS: Final[MappingProxyType[str, int]] = MappingProxyType(
    {
        "apa_aus": 30,
        "ccpa": 45,
        "cpa_co_usa": 45,
        "cpra_ca_usa": 45,
        "ctdpa_ct_usa": 45,
        "dpdpa_de_usa": 45,
        "fdbr_fl_usa": 45,
        "gdpr": 30,
        "hipaa_usa": 30,
        "icdpa_ia_usa": 90,
        "lgpd_bra": 15,
        "mcdpa_mn_usa": 45,
        "mcdpa_mt_usa": 45,
        "mhmda_wa_usa": 45,
        "modpa_md_usa": 45,
        "ndpa_ne_usa": 45,
        "nhpa_nh_usa": 45,
        "njdpa_nj_usa": 45,
        "nzpa_nzl": 20,
        "ocpa_or_usa": 45,
        "pdpa_tha": 30,
        "pipa_kor": 10,
        "ql25_qc_can": 30,
        "tdpsa_tx_usa": 45,
        "tipa_tn_usa": 45,
        "ucpa_ut_usa": 45,
        "vcdpa_va_usa": 45,
    }
)
REGULATIONS: Final = frozenset(REGULATION_DEADLINE_DAYS)

#: Legacy value -> current value (reference 7.3). Only ucpa_usa is spelled out by Adobe; the rest
#: follow by name. Adobe stopped accepting the legacy values after 2025-07-28.
LEGACY_REGULATIONS: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        "cpa": "cpa_co_usa",
        "cpa_usa": "cpa_co_usa",
        "cpra_usa": "cpra_ca_usa",
        "ctdpa": "ctdpa_ct_usa",
        "ctdpa_usa": "ctdpa_ct_usa",
        "dpdpa": "dpdpa_de_usa",
        "dpdpa_usa": "dpdpa_de_usa",
        "fdbr_usa": "fdbr_fl_usa",
        "icdpa_usa": "icdpa_ia_usa",
        "mcdpa_usa": "mcdpa_mt_usa",
        "mhmda": "mhmda_wa_usa",
        "mhmda_usa": "mhmda_wa_usa",
        "ndpa_usa": "ndpa_ne_usa",
        "nhpa_usa": "nhpa_nh_usa",
        "njdpa_usa": "njdpa_nj_usa",
        "ocpa_usa": "ocpa_or_usa",
        "ql25": "ql25_qc_can",
        "ql25_can": "ql25_qc_can",
        "tdpsa_usa": "tdpsa_tx_usa",
        "ucpa_usa": "ucpa_ut_usa",
        "vcdpa_usa": "vcdpa_va_usa",
    }
)


class StandardNamespace(NamedTuple):
    code: str
    namespace_id: int


#: Standard identity namespaces (reference 8): lower-cased code -> canonical code and namespaceId.
STANDARD_NAMESPACES: Final[MappingProxyType[str, StandardNamespace]] = MappingProxyType(
    {
        ns.code.lower(): ns
        for ns in (
            StandardNamespace("Email", 6),
            StandardNamespace("Phone", 7),
            StandardNamespace("AdCloud", 411),
            StandardNamespace("CORE", 0),
            StandardNamespace("ECID", 4),
            StandardNamespace("TNTID", 9),
            StandardNamespace("IDFA", 20915),
            StandardNamespace("GAID", 20914),
            StandardNamespace("WAID", 8),
        )
    }
)
EMAIL_NAMESPACE: Final = "Email"

#: The seven namespace qualifiers of `userIDs[].type` (reference 8), lower-cased -> canonical.
ID_TYPES: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        t.lower(): t
        for t in ("standard", "custom", "integrationCode", "namespaceId", "unregistered", "analytics", "target")
    }
)
DEFAULT_ID_TYPE: Final = "standard"

#: `include` product codes (reference 9; Adobe matches them case-insensitively), lower-cased -> canonical.
PRODUCTS: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        p.lower(): p
        for p in (
            "analytics",
            "audienceManager",
            "adCloud",
            "profileService",
            "aepDataLake",
            "campaign",
            "target",
            "CRS",
            "cjm",
            "marketo",
            "identity",
            "marketomeasure",
            "commerceMarketingData",
            "primetimeAuthentication",
            "AdobeCloudPlatform",
            "automationProduct",
        )
    }
)

#: Actions a job can carry; opt-out of sale is a separate flow (POST /consent), enabled per run.
JOB_ACTIONS: Final = ("access", "delete")
OPT_OUT_OF_SALE: Final = "opt_out_of_sale"
PRIORITIES: Final = ("normal", "low")


_CODE_LIKE = re.compile(r"(?=.*[A-Za-z])(?!.*\d{6})[A-Za-z0-9_.-]{1,40}")


def shown(value: str) -> str:
    """`value` quoted for a message when it looks like a code, else a placeholder.

    Reasons end up in logs and reports; a value in the wrong column may be an email or an ECID, so only
    short code-like strings (letters, no long digit runs) are echoed.
    """
    value = value.strip()
    return repr(value) if _CODE_LIKE.fullmatch(value) else "(value not shown)"


def resolve_regulation(value: str, *, map_legacy: bool) -> str:
    """The current regulation code for `value` (case-insensitive), from the built-in catalogue.

    :param map_legacy: convert a legacy value to its replacement instead of rejecting it.
    :raises ValueError: unknown value, or a legacy value while `map_legacy` is off (the message names
        the replacement).
    """
    return BUILT_IN.resolve(value, map_legacy=map_legacy)


#: The Airflow Variable (or connection extra key) that adds regulations without a release.
EXTRA_REGULATIONS_SETTING: Final = "privacy_extra_regulations"
_REGULATION_CODE = re.compile(r"[a-z][a-z0-9_]{1,39}")
MAX_WINDOW_DAYS: Final = 366


@dataclass(frozen=True)
class RegulationCatalog:
    """The regulation values a run accepts and their response windows: the built-in table plus extras.

    `extra` are the codes added through `EXTRA_REGULATIONS_SETTING`; a row naming an unknown value is
    told where such values are added.
    """

    windows: Mapping[str, int] = field(default_factory=lambda: REGULATION_DEADLINE_DAYS)
    extra: frozenset[str] = frozenset()
    setting: str = EXTRA_REGULATIONS_SETTING

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self.windows)

    def resolve(self, value: str, *, map_legacy: bool) -> str:
        """As `resolve_regulation`, knowing the extra codes too."""
        code = value.strip().lower()
        if code in self.windows:
            return code
        if code in LEGACY_REGULATIONS:
            replacement = LEGACY_REGULATIONS[code]
            if map_legacy:
                return replacement
            raise ValueError(
                f"legacy regulation {shown(code)} is no longer accepted by Adobe; use {replacement!r} "
                "(or enable legacy mapping)"
            )
        raise ValueError(f"unknown regulation {shown(value)}; if Adobe accepts it, add it with its response "
                         f"window in days to the {self.setting} Variable")

    def require(self, value: str, setting: str) -> str:
        """`resolve` for a param or setting: an unknown or legacy value is a `ConfigurationError`."""
        try:
            return self.resolve(value, map_legacy=False)
        except ValueError:
            raise ConfigurationError(setting, value, self.codes,
                                     f"add new codes to the {self.setting} Variable") from None

    def deadline_days(self, regulation: str, default_days: int = DEFAULT_DEADLINE_DAYS) -> int:
        return self.windows.get(regulation, default_days)


BUILT_IN: Final = RegulationCatalog()


def with_extra_regulations(extra: Mapping[str, Any] | str | None,
                           setting: str = EXTRA_REGULATIONS_SETTING) -> RegulationCatalog:
    """The built-in catalogue plus `extra` (`{code: window_days}`, or its JSON text as a Variable holds it).

    Codes are lower-case `[a-z][a-z0-9_]` (2-40 characters); windows are whole days, 1-366. A code
    already built in keeps its built-in window unless `extra` gives another (a statute changed); a
    legacy code is refused (Adobe no longer accepts it). None or "" adds nothing.

    :raises ConfigurationError: naming `setting` when the mapping is malformed.
    """
    if extra is None or (isinstance(extra, str) and not extra.strip()):
        return BUILT_IN
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise ConfigurationError(setting, "(not JSON)", (), 'expected a JSON object like {"dpdpa_ind": 30}') \
                from None
    if not isinstance(extra, Mapping):
        raise ConfigurationError(setting, type(extra).__name__, (), 'expected a JSON object like {"dpdpa_ind": 30}')
    windows = dict(REGULATION_DEADLINE_DAYS)
    for code, days in extra.items():
        if not isinstance(code, str) or not _REGULATION_CODE.fullmatch(code):
            raise ConfigurationError(setting, code, (), "a regulation code is lower-case letters, digits and _")
        if code in LEGACY_REGULATIONS:
            raise ConfigurationError(setting, code, (), f"a legacy value; Adobe now expects {LEGACY_REGULATIONS[code]!r}")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS:
            raise ConfigurationError(setting, f"{code}: {days!r}", (),
                                     f"the response window is a whole number of days, 1-{MAX_WINDOW_DAYS}")
        windows[code] = days
    return RegulationCatalog(MappingProxyType(windows), frozenset(extra) - set(REGULATION_DEADLINE_DAYS))


def require_products(values: Iterable[str], setting: str = "include") -> tuple[str, ...]:
    """Canonical product codes for a param or setting; an unknown one is a `ConfigurationError`."""
    products: list[str] = []
    for value in values:
        try:
            products.append(resolve_product(str(value)))
        except KeyError:
            raise ConfigurationError(setting, value, PRODUCTS.values()) from None
    return tuple(products)


def require_regulation(value: str, setting: str = "regulation",
                       regulations: RegulationCatalog | None = None) -> str:
    """The canonical code of a regulation given as a param; unknown or legacy: `ConfigurationError`."""
    return (regulations or BUILT_IN).require(value, setting)


def resolve_namespace(value: str) -> StandardNamespace:
    """The standard namespace for `value` (case-insensitive); `KeyError` if it is not standard."""
    return STANDARD_NAMESPACES[value.strip().lower()]


def resolve_product(value: str) -> str:
    """The canonical `include` code for `value` (case-insensitive); `KeyError` if unknown."""
    return PRODUCTS[value.strip().lower()]


def resolve_id_type(value: str) -> str:
    """The canonical namespace qualifier for `value` (case-insensitive); `KeyError` if unknown."""
    return ID_TYPES[value.strip().lower()]


def deadline_days(regulation: str, default_days: int = DEFAULT_DEADLINE_DAYS,
                  regulations: RegulationCatalog | None = None) -> int:
    """The legal response window of `regulation` in days, `default_days` when we have no figure.

    :param regulations: a catalogue with extra regulations (`with_extra_regulations`); built-in if None.
    """
    return (regulations or BUILT_IN).deadline_days(regulation, default_days)
