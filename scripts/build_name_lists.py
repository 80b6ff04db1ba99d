"""Rebuild app/data/person_names.json from public name tables (a developer tool, run offline).

Sources, read from packages installed for this script only (not dependencies of Teachfile):
- US Census Bureau 1990 name frequency files (public domain), as shipped in the PyPI
  package ``names`` 0.3.0 (MIT): every given name, and the most frequent surnames.
- Faker (MIT): the person-name lists of its English-language locales, for names that
  the 1990 US census lacks (Irish, Indian, Pakistani, Kenyan, Nigerian, New Zealand).
- /usr/share/dict/words (Debian ``wamerican``): a given name that is also an ordinary
  lower-case English word (May, Grace, Will, Frank) is marked ``word_like``; the scan then
  wants a listed surname after it, because such words open ordinary sentences.

Usage: python scripts/build_name_lists.py  (with ``names`` and ``faker`` importable)
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

SURNAMES_FROM_CENSUS = 20_000  # ~78 % of the 1990 population; the tail is mostly rare spellings
COMMON_GIVEN = 150  # the most frequent census given names stay unambiguous even if a word
FAKER_LOCALES = ("en_US", "en_GB", "en_NZ", "en_IE", "en_IN", "en_NG", "en_PK", "en_KE")
# Given names that open ordinary sentences in case text even though they are frequent.
ALWAYS_WORD_LIKE = {
    "Will",
    "Mark",
    "May",
    "June",
    "April",
    "August",
    "Grace",
    "Frank",
    "Rose",
    "Hope",
    "Faith",
    "Joy",
    "Chase",
    "Chance",
    "Guy",
    "Page",
    "Major",
    "Young",
    "Long",
    "Royal",
    "Prince",
    "Princess",
    "King",
    "Bill",
    "Art",
    "Don",
    "Sky",
    "Summer",
    "Autumn",
    "Dawn",
    "Ivy",
    "Iris",
    "Lane",
    "Penny",
    "Ruby",
    "Amber",
    "Pearl",
    "Golden",
    "Sterling",
    "Early",
    "Case",
    "Clay",
    "Hunter",
    "Mercy",
    "Patience",
    "Sunny",
    "Star",
    "Dean",
    "Marshal",
    "Gene",
    "Carol",
    "Holly",
    "Heather",
    "Violet",
    "Jade",
    "Crystal",
    "Precious",
    "Sage",
    "Paris",
    "Asia",
    "Lake",
    "River",
    "Rock",
    "Stone",
    "Bond",
    "Tory",
    "Deacon",
}
# Calendar words are dates, not names ("Sunday Morning", "Easter"); the months that are
# also common given names (April, May, June, August) stay, as word-like names.
NOT_NAMES = {
    *("January", "February", "March", "July", "September", "October", "November"),
    *("December", "Easter", "Christmas"),
    *("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
WORD = re.compile(r"^[A-Z][a-z]+(?:['-][A-Z]?[a-z]+)*$")
ROOT = Path(__file__).resolve().parent.parent


def _census(path: Path, limit: int | None = None) -> list[str]:
    out: list[str] = []
    for line in path.read_text().splitlines()[:limit]:
        name = line.split()[0]
        out.append(name.capitalize() if "'" not in name else name.title())
    return out


def main() -> None:
    names_pkg = Path(importlib.import_module("names").__file__ or "").parent
    male = _census(names_pkg / "dist.male.first")
    female = _census(names_pkg / "dist.female.first")
    surnames = _census(names_pkg / "dist.all.last", SURNAMES_FROM_CENSUS)
    given = male + female
    common = set(male[:COMMON_GIVEN]) | set(female[:COMMON_GIVEN])
    for locale in FAKER_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in ("first_names", "first_names_male", "first_names_female"):
            given.extend(getattr(provider, attr, None) or ())
        surnames.extend(getattr(provider, "last_names", None) or ())
    words = {w for w in Path("/usr/share/dict/words").read_text().split() if w.islower()}
    given_set = {g for g in given if WORD.match(g) and len(g) >= 2 and g not in NOT_NAMES}
    surname_set = {s for s in surnames if WORD.match(s) and len(s) >= 2}
    # Two letters ("Al", "Le", "Li", "Na") are too often something else: "et al", "Le Fort".
    word_like = {
        g
        for g in given_set
        if (g.lower() in words and g not in common) or g in ALWAYS_WORD_LIKE or len(g) <= 2
    }
    data = {
        "about": "Given names and surnames for the identifier scan; rebuilt by "
        "scripts/build_name_lists.py (sources in app/data/README.md).",
        "given": sorted(given_set - word_like),
        "given_word_like": sorted(word_like),
        "surnames": sorted(surname_set),
    }
    target = ROOT / "app" / "data" / "person_names.json"
    target.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n")
    print(
        f"{target}: {len(data['given'])} given, {len(word_like)} word-like, "
        f"{len(surname_set)} surnames"
    )


if __name__ == "__main__":
    main()
