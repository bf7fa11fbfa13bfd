"""Normalising and splitting Chinese (and English / pinyin) company names.

``parse_company_name`` splits a name into region, trade name (字号), industry words, legal form
and branch, and derives the keys the duplicate check (查重) works with:

* ``name_key`` — trade name + industry, with region and legal form removed: the hard identity
  key. 北京字节跳动科技有限公司, 字节跳动科技(北京)有限公司, 字节跳动（北京）科技有限公司 and
  字節跳動科技 all give ``字节跳动科技``.
* ``pinyin_key`` — toneless pinyin of the same core without separators (``zijietiaodongkeji``),
  for homophones and for names written in pinyin (``Haojia Technology Co., Ltd.`` →
  ``haojiakeji`` like 昊嘉科技).
* ``search_key`` — what the database indexes for trigram candidate retrieval: the trade name
  alone. Region, industry and legal words are shared by thousands of unrelated companies
  (科技, 有限公司, 北京); in a trigram index they would make every short name look like every
  other one and crowd the real look-alikes out of the top-N. Look-alikes that differ only in
  those words are still retrieved, because their trade names are equal.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

import opencc
from pypinyin import lazy_pinyin
from pypinyin.constants import PHRASES_DICT

from crm.identity.regions import (
    Division,
    division_by_code,
    latin_region,
    match_region_chain,
    regions_compatible,
)

__all__ = [
    "INDUSTRY_WORDS",
    "LEGAL_FORMS",
    "ParsedName",
    "is_too_short_for_fuzzy",
    "normalize_text",
    "parse_company_name",
    "sound_key",
    "to_pinyin",
]

_T2S = opencc.OpenCC("t2s")


def _conversion_triggers(converter: opencc.OpenCC) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """What can make the converter change a text: the single characters it maps to something
    else, and the longer words it maps to something else that contain none of those
    characters. A text holding neither converts to itself; most company names are written in
    simplified characters, and the pure-Python conversion (a tenth of an import's name
    parsing) is then skipped. None if this version of the library keeps its dictionaries
    elsewhere."""
    converter.convert("")  # loads the dictionaries
    chain = getattr(converter, "_dict_chain_data", None)
    if not isinstance(chain, list):
        return None
    entries: list[tuple[str, object]] = []
    pending: list[object] = list(chain)
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            entries.extend(item.items())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    if not entries:
        return None
    # A word mapped to itself only keeps its characters from the character table; that
    # changes nothing when none of them would change.
    changing = frozenset(word for word, value in entries if len(word) == 1 and value != word)
    words = tuple(
        sorted(
            {
                word
                for word, value in entries
                if len(word) > 1 and value != word and changing.isdisjoint(word)
            }
        )
    )
    return changing, words


_T2S_TRIGGERS = _conversion_triggers(_T2S)


def _to_simplified(text: str) -> str:
    if _T2S_TRIGGERS is not None:
        changing, words = _T2S_TRIGGERS
        if changing.isdisjoint(text) and not any(word in text for word in words):
            return text
    return _T2S.convert(text)


def _words(text: str) -> list[str]:
    return text.split()


# --------------------------------------------------------------------------------------------
# word lists
# --------------------------------------------------------------------------------------------

# Legal forms, stripped from the end of a name (repeatedly: 集团 + 股份有限公司).
LEGAL_FORMS: tuple[str, ...] = tuple(
    sorted(
        _words(
            "有限责任公司 股份有限公司 有限公司 股份公司 总公司 公司 集团 控股 有限合伙企业 "
            "普通合伙企业 特殊普通合伙 有限合伙 普通合伙 合伙企业 个人独资企业 个人独资 独资企业"
        ),
        key=len,
        reverse=True,
    )
)
# Bracketed notes that carry no identity: 有限合伙 etc. are legal forms, 中国 / 筹 are remarks.
_BRACKET_LEGAL = frozenset(
    _words("有限合伙 普通合伙 特殊普通合伙 个人独资 集团 控股 股份 有限公司 有限责任公司")
)
_BRACKET_NOTES = frozenset(_words("中国 中华 筹 筹建 筹备 原"))

# Industry words (行业), matched longest first from the end of the name, up to three times
# (网络 + 科技, 文化 + 传媒). The concatenation is the ``industry`` of a name, so how a compound
# is segmented does not matter.
INDUSTRY_WORDS: tuple[str, ...] = tuple(
    sorted(
        set(
            _words(
                """
                科技 技术 信息技术 信息科技 信息 网络 网络科技 软件 软件技术 计算机 电脑 数码 数字
                数字科技 智能 智能科技 智能技术 电子 电子科技 电子技术 电子商务 电商 通信 通讯
                通信技术 互联网 大数据 云计算 人工智能 物联网 区块链 数据 系统 系统集成 集成
                自动化 半导体 芯片 微电子 光电 光电科技 光学 仪器 仪表 仪器仪表 电器 电气 电力
                电力工程 电子元件 环保 环保科技 环境 环境科技 环境工程 节能 节能科技 新能源 能源
                能源科技 清洁能源 光伏 生物 生物科技 生物技术 生物医药 生命科学 医药 医药科技 制药
                药业 药房 大药房 医疗 医疗器械 医疗科技 医疗设备 医院 健康 健康科技 健康管理 卫生
                养老 康复 教育 教育科技 教育咨询 培训 职业培训 文化 文化传媒 文化传播 文化艺术
                文化发展 文化科技 传媒 传播 广告 广告传媒 影视 影视传媒 影业 娱乐 游戏 动漫 出版
                印刷 包装 设计 建筑设计 工程设计 艺术 体育 体育文化 旅游 旅行社 酒店 酒店管理 餐饮
                餐饮管理 食品 食品科技 饮料 酒业 茶业 农业 农业科技 林业 牧业 畜牧 渔业 水产 种业
                农产品 实业 工业 产业 贸易 商贸 国际贸易 进出口 外贸 商务 商务咨询 电子商务 供应链
                供应链管理 物流 国际物流 物流科技 运输 快递 货运 货运代理 国际货运代理 仓储 冷链
                航运 海运 航空 航天 船舶 汽车 汽车服务 汽车销售 汽车租赁 汽车配件 机动车 机械
                机械设备 机电 设备 五金 模具 精密 制造 智能制造 装备 重工 钢铁 钢结构 金属
                有色金属 新材料 材料 材料科技 化工 化学 塑料 塑胶 橡胶 玻璃 陶瓷 建材 石材 纺织
                服装 服饰 鞋业 家具 家居 家纺 日用品 化妆品 珠宝 工艺品 造纸 纸业 矿业 石油 石化
                天然气 燃气 水务 热力 建设 建设工程 建筑 建筑工程 工程 工程技术 市政工程 安装
                安装工程 装饰 装饰工程 装修 园林 园林绿化 景观 房地产 房地产开发 地产 置业 物业
                物业管理 物业服务 投资 投资管理 投资咨询 资产管理 基金 基金管理 股权投资 创业投资
                金融 金融服务 金融科技 保险 证券 银行 担保 融资租赁 租赁 小额贷款 典当 信托 咨询
                管理咨询 企业管理 企业管理咨询 信息咨询 技术咨询 管理 经济 发展 服务 技术服务
                信息服务 企业服务 人力资源 人力资源服务 劳务 家政 保洁 安保 保安 安防 消防 检测
                检验检测 认证 知识产权 法律 财务 财务咨询 会计 税务 审计 会展 展览 会议 营销 策划
                品牌 品牌管理 电子竞技 直播 照明 灯饰 通用 机器人 无人机 新能源汽车 储能 锂电 电池
                宠物 母婴 美容 美发 摄影 传感 测控 控制 软件开发 网络技术 信息系统 电子信息 科学
                科学技术
                """
            )
        ),
        key=len,
        reverse=True,
    )
)
_INDUSTRY_SET = frozenset(INDUSTRY_WORDS)
_INDUSTRY_LENGTHS = tuple(sorted({len(w) for w in INDUSTRY_WORDS}, reverse=True))
_LEGAL_SET = frozenset(LEGAL_FORMS)
_LEGAL_LENGTHS = tuple(sorted({len(w) for w in LEGAL_FORMS}, reverse=True))


def _longest_suffix(
    text: str, words: frozenset[str], lengths: tuple[int, ...], *, keep: int = 0
) -> str:
    """The longest of `words` that `text` ends with while `keep` characters stay before it
    ('' for none). A set look-up per word length: the loops over every word with endswith
    were a fifth of an import's name parsing."""
    for n in lengths:
        if len(text) - n >= keep and text[-n:] in words:
            return text[-n:]
    return ""


# Words so common that on their own they never name a company (科技有限公司, 北京信息技术).
_GENERIC = frozenset(
    _words(
        """
        科技 技术 信息 信息技术 信息科技 网络 网络科技 软件 电子 智能 数字 数据 系统 实业 工业
        产业 贸易 商贸 商务 服务 发展 管理 咨询 工程 建设 投资 文化 传媒 国际 中国 集团 控股 有限
        """
    )
)

_BRANCH_SUFFIXES = _words(
    "分公司 分店 分行 支行 办事处 营业部 代表处 分厂 分部 分所 分中心 分院 营业所 门市部 "
    "经营部 分社"
)
_BRANCH_RE = re.compile("(" + "|".join(sorted(_BRANCH_SUFFIXES, key=len, reverse=True)) + ")$")
_HEAD_LEGAL_RE = re.compile("有限责任公司|股份有限公司|有限公司|公司|集团|有限合伙|合伙企业")
_ORDINAL_RE = re.compile("第[一二三四五六七八九十百零〇两0-9]+$")

# English words -> Chinese. Multi-word phrases are tuples of tokens; longest first.
_EN_LEGAL: dict[tuple[str, ...], str] = {
    ("joint", "stock", "co", "ltd"): "股份有限公司",
    ("joint", "stock", "company", "limited"): "股份有限公司",
    ("joint", "stock", "company"): "股份有限公司",
    ("company", "limited"): "有限公司",
    ("co", "ltd"): "有限公司",
    ("co", "limited"): "有限公司",
    ("company", "ltd"): "有限公司",
    ("limited", "company"): "有限公司",
    ("limited", "liability", "company"): "有限责任公司",
    ("ltd",): "有限公司",
    ("limited",): "有限公司",
    ("llc",): "有限责任公司",
    ("inc",): "公司",
    ("incorporated",): "公司",
    ("corp",): "公司",
    ("corporation",): "公司",
    ("company",): "公司",
    ("co",): "公司",
    ("plc",): "股份有限公司",
    ("gmbh",): "有限公司",
    ("group",): "集团",
    ("holdings",): "控股",
    ("holding",): "控股",
}
_EN_INDUSTRY: dict[tuple[str, ...], str] = {
    ("information", "technology"): "信息技术",
    ("info", "tech"): "信息技术",
    ("it",): "信息技术",
    ("science", "and", "technology"): "科技",
    ("sci", "tech"): "科技",
    ("technology",): "科技",
    ("technologies",): "科技",
    ("tech",): "科技",
    ("hi", "tech"): "科技",
    ("high", "tech"): "科技",
    ("international",): "国际",
    ("trading",): "贸易",
    ("trade",): "贸易",
    ("import", "and", "export"): "进出口",
    ("imp", "and", "exp"): "进出口",
    ("software",): "软件",
    ("network",): "网络",
    ("networks",): "网络",
    ("internet",): "互联网",
    ("electronics",): "电子",
    ("electronic",): "电子",
    ("electric",): "电气",
    ("electrical",): "电气",
    ("logistics",): "物流",
    ("supply", "chain"): "供应链",
    ("pharmaceutical",): "医药",
    ("pharmaceuticals",): "医药",
    ("pharma",): "医药",
    ("medicine",): "医药",
    ("medical",): "医疗",
    ("health",): "健康",
    ("healthcare",): "健康",
    ("culture",): "文化",
    ("cultural",): "文化",
    ("education",): "教育",
    ("educational",): "教育",
    ("energy",): "能源",
    ("new", "energy"): "新能源",
    ("new", "materials"): "新材料",
    ("new", "material"): "新材料",
    ("materials",): "材料",
    ("material",): "材料",
    ("food",): "食品",
    ("foods",): "食品",
    ("machinery",): "机械",
    ("industrial",): "实业",
    ("industry",): "实业",
    ("industries",): "实业",
    ("environmental", "protection"): "环保",
    ("environmental",): "环保",
    ("environment",): "环境",
    ("biotechnology",): "生物科技",
    ("biotech",): "生物科技",
    ("bio", "tech"): "生物科技",
    ("biological", "technology"): "生物科技",
    ("bio", "technology"): "生物科技",
    ("biology",): "生物",
    ("biological",): "生物",
    ("consulting",): "咨询",
    ("consultancy",): "咨询",
    ("consultants",): "咨询",
    ("media",): "传媒",
    ("culture", "media"): "文化传媒",
    ("advertising",): "广告",
    ("construction", "engineering"): "建设工程",
    ("construction",): "建设",
    ("engineering",): "工程",
    ("catering",): "餐饮",
    ("real", "estate"): "房地产",
    ("property",): "物业",
    ("properties",): "置业",
    ("investment",): "投资",
    ("investments",): "投资",
    ("finance",): "金融",
    ("financial",): "金融",
    ("services",): "服务",
    ("service",): "服务",
    ("communication",): "通信",
    ("communications",): "通信",
    ("telecom",): "通信",
    ("intelligent",): "智能",
    ("smart",): "智能",
    ("digital",): "数字",
    ("data",): "数据",
    ("e", "commerce"): "电子商务",
    ("ecommerce",): "电子商务",
    ("design",): "设计",
    ("chemical",): "化工",
    ("chemicals",): "化工",
    ("textile",): "纺织",
    ("textiles",): "纺织",
    ("garment",): "服装",
    ("apparel",): "服装",
    ("automotive",): "汽车",
    ("auto",): "汽车",
    ("power",): "电力",
    ("equipment",): "设备",
    ("automation",): "自动化",
    ("semiconductor",): "半导体",
    ("semiconductors",): "半导体",
    ("optoelectronics",): "光电",
    ("optoelectronic",): "光电",
    ("management",): "管理",
    ("development",): "发展",
    ("hotel",): "酒店",
    ("hotels",): "酒店",
    ("travel",): "旅游",
    ("tourism",): "旅游",
    ("sports",): "体育",
    ("agriculture",): "农业",
    ("agricultural",): "农业",
    ("furniture",): "家具",
    ("packaging",): "包装",
    ("printing",): "印刷",
    ("steel",): "钢铁",
    ("mining",): "矿业",
    ("metal",): "金属",
    ("metals",): "金属",
    ("plastic",): "塑料",
    ("plastics",): "塑料",
    ("human", "resources"): "人力资源",
    ("security",): "安防",
    ("testing",): "检测",
    ("manufacturing",): "制造",
    ("entertainment",): "娱乐",
    ("film",): "影视",
    ("games",): "游戏",
    ("gaming",): "游戏",
    ("shipping",): "航运",
    ("aviation",): "航空",
    ("instrument",): "仪器",
    ("instruments",): "仪器",
    ("cosmetics",): "化妆品",
    ("insurance",): "保险",
    ("bank",): "银行",
}
_EN_NOTES = frozenset({"china", "prc", "the", "of", "city", "province", "district"})
_EN_CONNECTORS = frozenset({"and"})

_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ffff]")
_LATIN_RE = re.compile(r"[a-z]")


# --------------------------------------------------------------------------------------------
# text normalisation
# --------------------------------------------------------------------------------------------


def _keep(ch: str) -> bool:
    if ch in "()":
        return True
    return unicodedata.category(ch)[0] in "LN"


def _balance(text: str) -> str:
    """Drop unmatched brackets and empty bracket pairs; flatten nested brackets."""
    out: list[str] = []
    depth = 0
    opened: list[int] = []
    for ch in text:
        if ch == "(":
            if depth == 0:
                opened.append(len(out))
                out.append("(")
            depth += 1
        elif ch == ")":
            if depth == 0:
                continue
            depth -= 1
            if depth == 0:
                start = opened.pop()
                if start == len(out) - 1:
                    out.pop()  # empty pair
                else:
                    out.append(")")
        else:
            out.append(ch)
    for start in reversed(opened):
        del out[start]
    return "".join(out)


def _normalize_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _to_simplified(text)
    text = text.lower()
    chars: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Ps":
            chars.append("(")
        elif cat == "Pe":
            chars.append(")")
        elif _keep(ch):
            chars.append(ch)
    return _balance(unicodedata.normalize("NFKC", "".join(chars)))


@functools.lru_cache(maxsize=65536)
def normalize_text(s: str) -> str:
    """NFKC, traditional → simplified, lower case, ``()`` for every bracket kind, no spaces or
    punctuation (bracket contents are kept). Idempotent."""
    text = _normalize_once(s)
    if text == s:  # already a fixed point (most names are): no second pass to confirm it
        return text
    for _ in range(4):
        again = _normalize_once(text)
        if again == text:
            break
        text = again
    return text


@functools.lru_cache(maxsize=65536)
def _pinyin_of(text: str) -> str:
    return "".join(lazy_pinyin(text)).lower().replace("v", "u").replace("ü", "u")


_LONGEST_PHRASE = max(map(len, PHRASES_DICT))


@functools.lru_cache(maxsize=65536)
def to_pinyin(text: str) -> str:
    """Toneless pinyin without separators; ``ü`` is written ``u`` (as in English spellings).
    Cached: the sound key asks for every character and the pinyin key for every industry word,
    the same few thousand over and over.

    pypinyin reads a word of its phrase dictionary as a phrase (重庆 chóng, not zhòng) and
    every other character on its own. A text holding no such word is therefore read
    character by character from a per-character cache: pypinyin's segmentation costs a
    tenth of parsing a name, and most trade names hold no dictionary word."""
    n = len(text)
    for start in range(n - 1):
        for end in range(start + 2, min(n, start + _LONGEST_PHRASE) + 1):
            if text[start:end] in PHRASES_DICT:
                return _pinyin_of(text)
    return "".join(map(_pinyin_of, text))


def _fuzzy_syllable(syllable: str) -> str:
    """Merge the sounds pinyin input methods and southern accents confuse: zh/z, ch/c, sh/s,
    l/n, -ing/-in, -eng/-en, -ang/-an."""
    for retroflex in ("zh", "ch", "sh"):
        if syllable.startswith(retroflex):
            syllable = syllable[0] + syllable[2:]
            break
    if syllable.startswith("l"):
        syllable = "n" + syllable[1:]
    if syllable.endswith(("ing", "eng", "ang")):
        syllable = syllable[:-1]
    return syllable


def sound_key(text: str) -> str:
    """Fuzzy per-character pinyin (``-`` between syllables): equal for homophones and for the
    near-homophones a pinyin input method produces (智品 / 致品, 承纳 / 城纳, 长 / 常)."""
    out: list[str] = []
    for ch in text:
        if _CJK_RE.match(ch):
            out.append(_fuzzy_syllable(to_pinyin(ch)))
        else:
            out.append(ch)
    return "-".join(out)


def _cjk_count(text: str) -> int:
    return len(_CJK_RE.findall(text))


# --------------------------------------------------------------------------------------------
# the parsed name
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedName:
    """A company name split into its parts, with the keys derived from them."""

    raw: str
    normalized: str
    region: str = ""  # canonical short name of the most specific region: 北京, 苏州, 海淀
    region_code: str = ""  # its GB/T 2260 code
    province: str = ""  # canonical short province name: 江苏 for 苏州
    trade_name: str = ""  # 字号
    industry: str = ""  # 行业 words, concatenated: 科技, 网络科技
    legal_form: str = ""  # 有限公司, 集团股份有限公司, (有限合伙)
    branch: str = ""  # 厦门分公司, or ''
    is_latin: bool = False
    name_key: str = ""
    pinyin_key: str = ""
    trade_pinyin: str = ""
    sound_key: str = ""  # fuzzy per-character pinyin of the trade name
    search_key: str = ""
    # other readings when a leading place name may belong to the trade name (金华锦达科技 may
    # be 锦达科技 in 金华, or 金华锦达科技 anywhere): (name_key, region_code) pairs.
    alternatives: tuple[tuple[str, str], ...] = field(default=())

    @property
    def core(self) -> str:
        return self.trade_name + self.industry

    @property
    def has_identity(self) -> bool:
        """Whether the name has a trade name at all (not only region/industry/legal words)."""
        return _identifies(self.trade_name, self.industry)


def _strip_legal(text: str) -> tuple[str, list[str]]:
    found: list[str] = []
    changed = True
    while changed:
        form = _longest_suffix(text, _LEGAL_SET, _LEGAL_LENGTHS, keep=1)
        changed = bool(form)
        if changed:
            text = text[: -len(form)]
            found.insert(0, form)
    return text, found


def _split_industry(text: str) -> tuple[str, str]:
    """(trade name, industry): industry words taken from the end while ≥ 2 characters stay."""
    words: list[str] = []
    for _ in range(3):
        word = _longest_suffix(text, _INDUSTRY_SET, _INDUSTRY_LENGTHS, keep=2)
        if not word:
            break
        text = text[: -len(word)]
        words.insert(0, word)
    return text, "".join(words)


def _identifies(trade: str, industry: str) -> bool:
    """Whether a trade name can identify a company: two or more characters, not a generic
    word, and not an industry word standing alone (成都海运实业: 海运 is the trade name there)."""
    if len(trade) < 2 or trade in _GENERIC or trade in LEGAL_FORMS:
        return False
    return trade not in _INDUSTRY_SET or bool(industry)


def _branch_text(raw_branch: str) -> str:
    """厦门市分公司 → 厦门分公司; 福建省厦门市分公司 → 厦门分公司."""
    match = match_region_chain(raw_branch, 0, allow_county_short=True)
    if match is None:
        return raw_branch
    return match.most_specific.short + raw_branch[match.end :]


def _split_branch(text: str) -> tuple[str, str]:
    m = _BRANCH_RE.search(text)
    if not m or m.start() == 0:
        return text, ""
    head_end = 0
    for legal in _HEAD_LEGAL_RE.finditer(text):
        if legal.end() <= m.start():
            head_end = legal.end()
    if head_end:
        return text[:head_end], _branch_text(text[head_end:])
    before = text[: m.start()]
    ordinal = _ORDINAL_RE.search(before)
    if ordinal and ordinal.start() >= 2:
        return before[: ordinal.start()], before[ordinal.start() :] + m.group(1)
    for start in range(max(0, len(before) - 12), len(before)):
        if start < 2:
            continue
        region = match_region_chain(before, start, allow_county_short=True)
        if region is not None and region.end == len(before):
            return before[:start], _branch_text(before[start:] + m.group(1))
    return before, m.group(1)


@dataclass(slots=True)
class _Parts:
    region: Division | None = None
    trade: str = ""
    industry: str = ""
    legal: list[str] = field(default_factory=list)
    branch: str = ""
    alternatives: list[tuple[str, str]] = field(default_factory=list)


def _pick_region(a: Division | None, b: Division | None) -> Division | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if len(a.code) >= len(b.code) else b


def _parse_cjk(text: str) -> _Parts:
    parts = _Parts()
    bracket_region: Division | None = None
    kept: list[str] = []
    pos = 0
    for m in re.finditer(r"\(([^()]*)\)", text):
        kept.append(text[pos : m.start()])
        pos = m.end()
        content = m.group(1)
        chain = match_region_chain(content, 0, allow_county_short=True)
        if chain is not None and chain.end == len(content):
            bracket_region = _pick_region(bracket_region, chain.most_specific)
        elif content in _BRACKET_LEGAL:
            parts.legal.append(f"({content})")
        elif content in _BRACKET_NOTES:
            continue
        else:
            kept.append(content)
    kept.append(text[pos:])
    body = "".join(kept)

    head, parts.branch = _split_branch(body)
    head, legal = _strip_legal(head)
    parts.legal[:0] = legal

    latin = re.match(r"[a-z]+", head)
    if latin and latin.end() < len(head) and _CJK_RE.match(head[latin.end()]):
        place = latin_region(latin.group())  # QINGDAO海润新材料
        if place is not None and _identifies(*_split_industry(head[latin.end() :])):
            bracket_region = _pick_region(bracket_region, place)
            head = head[latin.end() :]

    chain = match_region_chain(head, 0)
    # readings of the leading place names: (divisions stripped, region, rest)
    readings: list[tuple[int, Division | None, str]] = []
    if chain is not None:
        divs = chain.divisions
        for n in range(len(divs), 0, -1):
            division = divs[n - 1]
            if bracket_region is not None and not regions_compatible(
                division.code, bracket_region.code
            ):
                continue
            rest = head[chain.ends[n - 1] :]
            if _identifies(*_split_industry(rest)):
                readings.append((n, division, rest))
        # the place names kept as (part of) the trade name, written short: 上海市医药 → 上海医药
        readings.append((0, None, "".join(d.short for d in divs) + head[chain.end :]))
    else:
        readings.append((0, None, head))

    chosen, lead, rest = readings[0]
    parts.region = _pick_region(lead, bracket_region)
    parts.trade, parts.industry = _split_industry(rest)
    _strip_inner_region(parts)
    if chain is not None:
        starts = (0, *chain.ends)
        for n, alt_lead, alt_rest in readings[1:]:
            # only when the place names given up were written short (金华, not 金华市)
            given_up = range(n, chosen)
            if any(head[starts[i] : starts[i + 1]] != chain.divisions[i].short for i in given_up):
                continue
            trade, industry = _split_industry(alt_rest)
            region = _pick_region(alt_lead, bracket_region)
            parts.alternatives.append((trade + industry, region.code if region else ""))
    return parts


def _strip_inner_region(parts: _Parts) -> None:
    """A place name between trade name and industry without brackets (字节跳动北京科技): taken
    as the region when it fits the region found so far; the unstripped reading is kept as an
    alternative."""
    trade = parts.trade
    if not parts.industry:
        return
    for start in range(2, len(trade) - 1):
        match = match_region_chain(trade, start, max_level=2)
        if (
            match is None
            or match.end != len(trade)
            or not _identifies(trade[:start], parts.industry)
        ):
            continue
        place = match.most_specific
        if parts.region is not None and not regions_compatible(place.code, parts.region.code):
            return
        code = parts.region.code if parts.region else ""
        parts.alternatives.append((trade + parts.industry, code))
        parts.region = _pick_region(parts.region, place)
        parts.trade = trade[:start]
        return


def _pinyin_table(words: tuple[str, ...]) -> dict[str, str]:
    table: dict[str, str] = {}
    for word in words:  # longest first, so 信息技术 wins over 信息 + 技术 for "xinxijishu"
        table.setdefault(to_pinyin(word), word)
    return table


@functools.cache
def _pinyin_legal() -> dict[str, str]:
    return _pinyin_table(LEGAL_FORMS)


@functools.cache
def _pinyin_industry() -> dict[str, str]:
    return _pinyin_table(INDUSTRY_WORDS)


def _take_suffix(
    tokens: list[str], *, legal: bool, allow_pinyin: bool = True
) -> tuple[int, str, bool] | None:
    """The longest English phrase or pinyin word (over up to 6 tokens) ending the tokens that
    is a legal form / industry word: (tokens used, Chinese word, whether it was English).
    Pinyin industry words are only looked for in names that are not written in English
    (in "Zhibo Logistics", zhibo is a trade name, not 直播)."""
    table = _EN_LEGAL if legal else _EN_INDUSTRY
    pinyin = _pinyin_legal() if legal else _pinyin_industry()
    best: tuple[int, str, bool] | None = None
    for n in range(1, min(6, len(tokens) - 1) + 1):
        window = tuple(tokens[-n:])
        english = table.get(window)
        if english is not None:
            best = (n, english, True)
        elif allow_pinyin and "".join(window) in pinyin:
            best = (n, pinyin["".join(window)], False)
    return best


def _latin_region_at(tokens: list[str], i: int) -> tuple[Division, int] | None:
    """A region named by tokens[i:i+n] (beijing, hong kong, shi jia zhuang); (region, n)."""
    for n in (3, 2, 1):
        if i + n <= len(tokens):
            div = latin_region("".join(tokens[i : i + n]))
            if div is not None:
                return div, n
    return None


def _only_industry(tokens: list[str], *, allow_pinyin: bool) -> bool:
    """Whether the tokens are nothing but industry words (no trade name would be left)."""
    rest = [t for t in tokens if t not in _EN_CONNECTORS]
    while rest:
        for n in range(len(rest), 0, -1):
            window = tuple(rest[-n:])
            if window in _EN_INDUSTRY or (allow_pinyin and "".join(window) in _pinyin_industry()):
                del rest[-n:]
                break
        else:
            return False
    return True


# pinyin 市 / 省 / 区 after a place name; also ordinary syllables (时, 盛, 渠), so both readings
# are kept: the word dropped (main reading) and kept (an alternative)
_PINYIN_REGION_WORDS = frozenset({"shi", "sheng", "qu", "xian"})


def _latin_tokens(text: str) -> list[str]:
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)  # CamelCase: JuguangShiye
    return re.findall(r"[a-z0-9]+", text.lower().replace("&", " and "))


def _parse_latin(raw: str) -> _Parts:
    parts = _Parts()
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(
        "(" if unicodedata.category(c) == "Ps" else ")" if unicodedata.category(c) == "Pe" else c
        for c in text
    )
    body: list[str] = []
    pos = 0
    bracket_region: Division | None = None
    for m in re.finditer(r"\(([^()]*)\)", text):
        body.append(text[pos : m.start()])
        pos = m.end()
        inner = [t for t in _latin_tokens(m.group(1)) if t not in _EN_NOTES]
        found = _latin_region_at(inner, 0) if inner else None
        if found is not None and found[1] == len(inner):
            bracket_region = _pick_region(bracket_region, found[0])
        elif inner:
            body.append(" " + " ".join(inner) + " ")
    body.append(text[pos:])
    tokens = [t for t in _latin_tokens(" ".join(body)) if t not in ("the", "of")]

    # branch: "... Beijing Branch" / "... Representative Office"
    if len(tokens) > 1 and tokens[-1] in ("branch", "office", "fengongsi", "banshichu"):
        suffix = "办事处" if tokens[-1] == "banshichu" else "分公司"
        tokens.pop()
        if tokens[-1] == "representative":
            tokens.pop()
            suffix = "代表处"
        elif tokens[-1] == "branch":
            tokens.pop()
        place = ""
        for span in (3, 2, 1):
            if len(tokens) > span:
                found = _latin_region_at(tokens, len(tokens) - span)
                if found is not None and found[1] == span:
                    place = found[0].short
                    del tokens[-span:]
                    break
        parts.branch = place + suffix

    english = False
    while len(tokens) > 1:
        legal = _take_suffix(tokens, legal=True)
        if legal is None:
            break
        del tokens[-legal[0] :]
        parts.legal.insert(0, legal[1])
        english = english or legal[2]
    english = english or any(
        t in _EN_NOTES or (t,) in _EN_INDUSTRY or (t,) in _EN_LEGAL for t in tokens
    )

    tokens = [t for t in tokens if t not in _EN_NOTES or len(tokens) == 1]
    region: Division | None = None
    # leading regions (province, then city), then a trailing one (… Technology Shenzhen)
    lead_tokens: list[str] = []
    kept_word = ""
    while tokens:
        found = _latin_region_at(tokens, 0)
        rest = tokens[found[1] :] if found is not None else []
        if found is None or not rest or _only_industry(rest, allow_pinyin=not english):
            break
        if region is not None and not region.contains(found[0]):
            break
        region = found[0]
        lead_tokens += tokens[: found[1]]
        del tokens[: found[1]]
        if len(tokens) > 1 and tokens[0] in _PINYIN_REGION_WORDS:
            kept_word = tokens.pop(0)
    if len(tokens) > 1:
        found = _latin_region_at(tokens, len(tokens) - 1)
        if (
            found is not None
            and found[1] == 1
            and regions_compatible(found[0].code, region.code if region else "")
        ):
            region = _pick_region(region, found[0])
            tokens.pop()

    industry: list[str] = []
    for _ in range(4):
        ind = _take_suffix(tokens, legal=False, allow_pinyin=not english)
        if ind is None:
            break
        del tokens[-ind[0] :]
        industry.insert(0, ind[1])
        while len(tokens) > 1 and tokens[-1] in _EN_CONNECTORS:
            tokens.pop()
    parts.region = _pick_region(region, bracket_region)
    parts.trade = "".join(tokens)
    parts.industry = "".join(industry)
    # other readings: a pinyin 市/省 that was a syllable of the trade name (Xiamen Shi Tong),
    # a place name that was part of it (An Hui Yun = 安汇云, not 安徽 + 云)
    code = parts.region.code if parts.region else ""
    if kept_word:
        parts.alternatives.append((kept_word + parts.trade + parts.industry, code))
    if lead_tokens:
        bracket_code = bracket_region.code if bracket_region else ""
        lead = "".join(lead_tokens) + kept_word
        parts.alternatives.append((lead + parts.trade + parts.industry, bracket_code))
    return parts


@functools.lru_cache(maxsize=65536)
def parse_company_name(name: str) -> ParsedName:
    """Split a company name into region, trade name, industry, legal form and branch."""
    normalized = normalize_text(name)
    is_latin = not _CJK_RE.search(normalized) and bool(_LATIN_RE.search(normalized))
    parts = _parse_latin(name) if is_latin else _parse_cjk(normalized)
    region = parts.region
    province = division_by_code(region.code[:2]) if region is not None else None
    trade = parts.trade
    industry = parts.industry
    trade_pinyin = to_pinyin(trade)
    return ParsedName(
        raw=name,
        normalized=normalized,
        region=region.short if region else "",
        region_code=region.code if region else "",
        province=province.short if province else "",
        trade_name=trade,
        industry=industry,
        legal_form="".join(parts.legal),
        branch=parts.branch,
        is_latin=is_latin,
        name_key=trade + industry,
        pinyin_key=trade_pinyin + to_pinyin(industry),
        trade_pinyin=trade_pinyin,
        sound_key="" if is_latin else sound_key(trade),
        search_key=trade or normalized,
        alternatives=tuple(dict.fromkeys(parts.alternatives)),
    )


def is_too_short_for_fuzzy(search_key: str) -> bool:
    """Whether a query is too short or too generic for fuzzy (trigram) retrieval.

    True when fewer than 2 distinctive CJK characters (and fewer than 4 latin letters or
    digits) remain after removing region, industry and legal-form words.
    """
    text = normalize_text(search_key).replace("(", "").replace(")", "")
    stripped = True
    while stripped and text:
        form = _longest_suffix(text, _LEGAL_SET, _LEGAL_LENGTHS)
        stripped = bool(form)
        text = text[: len(text) - len(form)]
    chain = match_region_chain(text, 0)
    if chain is not None:
        text = text[chain.end :]
    changed = True
    while changed and text:
        word = _longest_suffix(text, _INDUSTRY_SET, _INDUSTRY_LENGTHS)
        changed = bool(word)
        text = text[: len(text) - len(word)]
    cjk = _cjk_count(text)
    latin = len(re.findall(r"[a-z0-9]", text))
    return cjk < 2 and latin < 4
