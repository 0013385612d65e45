"""Vendor locations -> ISO-3166 alpha-2 country and continent.

Vendors name places many ways ("Texas, US", "Norway", "us-east-1", "eu-central"); adapters pass
what they have and get `Location(country, continent)`, with None where it cannot be known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# continent code -> {ISO alpha-2: English short name}
_COUNTRIES: dict[str, dict[str, str]] = {
    "NA": {"US": "United States", "CA": "Canada", "MX": "Mexico", "CR": "Costa Rica", "PA": "Panama"},
    "SA": {"BR": "Brazil", "AR": "Argentina", "CL": "Chile", "CO": "Colombia", "PE": "Peru", "UY": "Uruguay"},
    "EU": {
        "GB": "United Kingdom", "IE": "Ireland", "FR": "France", "DE": "Germany", "NL": "Netherlands",
        "BE": "Belgium", "LU": "Luxembourg", "CH": "Switzerland", "AT": "Austria", "IT": "Italy",
        "ES": "Spain", "PT": "Portugal", "SE": "Sweden", "NO": "Norway", "FI": "Finland", "DK": "Denmark",
        "IS": "Iceland", "PL": "Poland", "CZ": "Czechia", "SK": "Slovakia", "HU": "Hungary", "RO": "Romania",
        "BG": "Bulgaria", "GR": "Greece", "HR": "Croatia", "SI": "Slovenia", "RS": "Serbia", "EE": "Estonia",
        "LV": "Latvia", "LT": "Lithuania", "UA": "Ukraine", "MD": "Moldova", "BY": "Belarus", "RU": "Russia",
    },
    "AS": {
        "JP": "Japan", "KR": "South Korea", "CN": "China", "HK": "Hong Kong", "TW": "Taiwan",
        "SG": "Singapore", "IN": "India", "ID": "Indonesia", "MY": "Malaysia", "TH": "Thailand",
        "VN": "Vietnam", "PH": "Philippines", "AE": "United Arab Emirates", "SA": "Saudi Arabia",
        "QA": "Qatar", "IL": "Israel", "TR": "Turkey", "KZ": "Kazakhstan", "GE": "Georgia", "AM": "Armenia",
    },
    "OC": {"AU": "Australia", "NZ": "New Zealand"},
    "AF": {"ZA": "South Africa", "NG": "Nigeria", "KE": "Kenya", "EG": "Egypt", "MA": "Morocco"},
}
CONTINENT_OF: dict[str, str] = {cc: cont for cont, names in _COUNTRIES.items() for cc in names}
_CODE_OF_NAME: dict[str, str] = {
    name.lower(): cc for names in _COUNTRIES.values() for cc, name in names.items()
} | {"usa": "US", "uk": "GB", "czech republic": "CZ", "korea": "KR", "uae": "AE", "the netherlands": "NL"}

# Common cloud region prefixes ("us-east-1", "europe-west4", "ap-northeast-1") -> country.
_REGION_PREFIX: tuple[tuple[str, str], ...] = (
    (r"^(us|usa)\b", "US"), (r"^ca\b|canada", "CA"), (r"^(eu-)?north\b|sweden|stockholm", "SE"),
    (r"finland|helsinki|fin-", "FI"), (r"norway|oslo", "NO"), (r"iceland", "IS"),
    (r"^uk\b|london|^gb\b", "GB"), (r"frankfurt|germany|^de\b", "DE"), (r"paris|france|^fr\b", "FR"),
    (r"amsterdam|netherlands|^nl\b", "NL"), (r"tokyo|japan|^jp\b", "JP"), (r"singapore|^sg\b", "SG"),
    (r"sydney|australia|^au\b", "AU"), (r"seoul|korea", "KR"), (r"mumbai|india|^in\b", "IN"),
)


@dataclass(frozen=True)
class Location:
    country: str | None
    continent: str | None


UNKNOWN = Location(None, None)


def country(code_or_name: str | None) -> Location:
    """Location for an ISO alpha-2 code or an English country name; UNKNOWN otherwise."""
    if not code_or_name:
        return UNKNOWN
    text = code_or_name.strip()
    code = text.upper() if len(text) == 2 else _CODE_OF_NAME.get(text.lower())
    if code is None or code not in CONTINENT_OF:
        return UNKNOWN
    return Location(code, CONTINENT_OF[code])


@lru_cache(maxsize=4096)  # a sync sees few distinct places, each many times
def from_place(place: str | None) -> Location:
    """'Texas, US' / 'Quebec, CA' / 'Norway' / 'us-east-1': the last comma part is the country."""
    if not place:
        return UNKNOWN
    found = country(place.rsplit(",", 1)[-1])
    if found.country:
        return found
    lowered = place.strip().lower()
    for pattern, code in _REGION_PREFIX:
        if re.search(pattern, lowered):
            return country(code)
    return UNKNOWN
