"""What we know, and what we assume, about the AIR MILES Offer State API.

Every point that `docs/airmiles-api.md` marks [assumed] lives here (or is a setting in
`config.py` defaulting to a value from here), so that it can be changed in one place when
AIR MILES confirms the real behaviour. The tags: [doc] stated on an AIR MILES Offer State page,
[sibling] stated for another AIR MILES API and likely to hold here, [assumed] our own decision
(docs/airmiles-api.md, "Legend").
"""

from __future__ import annotations

# Environments [doc] and their token endpoints ([sibling] for UAT, [assumed] for production).
ENVIRONMENTS: dict[str, tuple[str, str]] = {
    "uat": ("https://uat.airmilesapis.ca", "https://oauth-cert.airmiles.ca/oauth/token"),
    "prod": ("https://airmilesapis.ca", "https://oauth.airmiles.ca/oauth/token"),
}

# Paths. HEALTH, FIND and GET are [doc]; COUNT is [assumed]; PUT is [doc] but the page
# contradicts itself (state-reader vs state-writer), so it is a setting too.
HEALTH_PATH = "/offers/state-reader/health"
FIND_PATH = "/offers/state-reader/v1/find"
GET_PATH = "/offers/state-reader/v1/get"
COUNT_PATH = "/offers/state-reader/v1/count"
PUT_PATH = "/offers/state-writer/v1/put"

# States [sibling: Offer Service]: the only name/value pairs that exist.
ALLOWED_STATES: dict[str, frozenset[str]] = {
    "SAVE": frozenset({"SAVED", "UNSAVED"}),
    "OPT_IN": frozenset({"OPTED_IN"}),
}
STATE_FILTER_SEPARATOR = ":"  # FIND's `state=NAME:VALUE` [doc]

# Limits. GET's 100 ids and FIND's paging are [assumed].
GET_MAX_OFFER_IDS = 100
PAGE_NUMBER_FIRST = 0  # paging base [assumed]
PAGE_SIZE_DEFAULT = 20  # [assumed]
PAGE_SIZE_MAX = 100  # [assumed]
# Sort keys are not documented at all [assumed]; anything else is refused before any call.
SORT_FIELDS = ("updatedAt", "offerId", "partnerId")
# Province and territory codes for FIND's `region` ([doc] gives `ON` as an example).
REGIONS = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})

# COUNT answers `{"count": n}` [assumed].
COUNT_FIELD = "count"
# Error bodies carry `responseCode` [doc]; `message` beside it is [assumed].
ERROR_CODE_FIELD = "responseCode"
# PUT answers 204 [doc], one sample shows 200: both are success.
PUT_SUCCESS_STATUSES = frozenset({200, 204})

# [doc] 11 digits; no check digit is documented. ASCII digits only: Python's \d also takes
# other scripts' digits (٨٠…), which must never reach AIR MILES.
COLLECTOR_NUMBER_PATTERN = r"^[0-9]{11}$"
COLLECTOR_HEADER = "Collector-Number"
# `X-Local-Time`: the caller's wall-clock time, no zone, seconds [doc].
LOCAL_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"
