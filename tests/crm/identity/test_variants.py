"""Constructed look-alikes of invented companies, judged like the labelled dev set: `block`
must be a hard match on the expected company (and no other hard match), `surface` at least a
soft one, `distinct` never hard, `none` nothing at all."""

from __future__ import annotations

import pytest

from crm.identity.matcher import IdentityKeys, keys_for, rank

BASE: dict[str, str] = {
    "yunfan": "杭州云帆网络科技有限公司",
    "tengyue": "深圳市腾跃电子有限公司",
    "boya": "北京博雅教育科技有限公司",
    "jiahe": "嘉禾食品(苏州)有限公司",
    "lanhai": "成都蓝海物流有限公司",
    "jincheng": "上海锦程国际贸易有限公司",
    "hairun": "青岛海润新材料股份有限公司",
    "huatai": "南京华泰医药集团有限公司",
    "xingchen": "厦门星辰软件有限公司",
    "qinchuan": "西安秦川文化传媒有限公司",
    "mingda": "郑州明达环保科技有限公司",
    "ruixiang": "瑞祥建设工程(重庆)有限公司",
}

CASES: list[tuple[str, str, str]] = [
    # the same company written differently: block
    ("浙江省杭州市云帆网络科技有限公司", "yunfan", "block"),
    ("云帆网络科技（杭州）有限公司", "yunfan", "block"),
    ("杭州 雲帆 網絡科技 有限公司", "yunfan", "block"),
    ("云帆网络科技股份有限公司", "yunfan", "block"),
    ("广东省深圳市腾跃电子有限公司", "tengyue", "block"),
    ("【深圳】腾跃·电子（有限公司）", "tengyue", "block"),
    ("北京博雅教育科技有限责任公司。", "boya", "block"),
    ("江苏苏州嘉禾食品有限公司", "jiahe", "block"),
    ("江苏省嘉禾食品有限公司", "jiahe", "block"),
    ("成都市锦江区蓝海物流有限公司", "lanhai", "block"),
    ("四川成都蓝海物流集团有限公司", "lanhai", "block"),
    ("锦程国际贸易（上海）有限公司", "jincheng", "block"),
    ("ＱＩＮＧＤＡＯ海润新材料有限公司", "hairun", "surface"),
    ("华泰医药集团", "huatai", "block"),
    ("厦门市星辰软件有限公司厦门分公司", "xingchen", "distinct"),
    ("西安秦川文化传媒有限公司", "qinchuan", "block"),
    ("陕西省西安市秦川文化传媒有限公司", "qinchuan", "block"),
    ("瑞祥建設工程有限公司", "ruixiang", "block"),
    # homophones and typos: surface
    ("杭州芸帆网络科技有限公司", "yunfan", "surface"),
    ("杭州云帆网落科技有限公司", "yunfan", "surface"),
    ("深圳腾越电子有限公司", "tengyue", "surface"),
    ("北京博亚教育科技有限公司", "boya", "surface"),
    ("苏州嘉和食品有限公司", "jiahe", "surface"),
    ("上海锦成国际贸易有限公司", "jincheng", "surface"),
    ("厦门星晨软件有限公司", "xingchen", "surface"),
    ("郑州明大环保科技有限公司", "mingda", "surface"),
    ("秦川文化传媒有限公司", "qinchuan", "block"),
    ("西安秦州文化传媒有限公司", "qinchuan", "surface"),
    # English and pinyin names: surface
    ("Hangzhou Yunfan Network Technology Co., Ltd.", "yunfan", "surface"),
    ("Yun Fan Wang Luo Ke Ji You Xian Gong Si", "yunfan", "surface"),
    ("Shenzhen Tengyue Electronics Co., Ltd.", "tengyue", "surface"),
    ("Beijing Boya Education Technology Co., Ltd.", "boya", "surface"),
    ("Jiahe Foods (Suzhou) Co., Ltd.", "jiahe", "surface"),
    ("Shanghai Jincheng International Trading Co., Ltd.", "jincheng", "surface"),
    ("Qingdao Hairun New Material Co.,Ltd", "hairun", "surface"),
    ("NANJING HUATAI PHARMACEUTICAL GROUP CO., LTD.", "huatai", "surface"),
    ("Xiamen XingChen Software Co Ltd", "xingchen", "surface"),
    ("Zhengzhou Mingda Environmental Protection Technology Co., Ltd.", "mingda", "surface"),
    # look-alikes that are other companies: never hard
    ("杭州云帆传媒有限公司", "yunfan", "distinct"),
    ("上海云帆网络科技有限公司", "yunfan", "distinct"),
    ("杭州云帆网络科技有限公司上海分公司", "yunfan", "distinct"),
    ("杭州帆云网络科技有限公司", "yunfan", "distinct"),
    ("深圳腾跃电子有限公司广州分公司", "tengyue", "distinct"),
    ("广州嘉禾食品有限公司", "jiahe", "distinct"),
    ("青岛海润生物科技有限公司", "hairun", "distinct"),
    ("Shanghai Yunfan Network Technology Co., Ltd.", "yunfan", "distinct"),
    # unrelated, sharing only common words: nothing
    ("杭州星河网络科技有限公司", "", "none"),
    ("深圳市华强电子有限公司", "", "none"),
    ("北京新东方教育科技有限公司", "", "none"),
    ("上海信息技术有限公司", "", "none"),
    ("成都顺丰物流有限公司", "", "none"),
    ("科技有限公司", "", "none"),
    ("西安古城文化传媒有限公司", "", "none"),
    ("Hangzhou Xinghe Network Technology Co., Ltd.", "", "none"),
]


@pytest.fixture(scope="module")
def index() -> list[tuple[str, IdentityKeys]]:
    return [(ref, keys_for(name)) for ref, name in BASE.items()]


@pytest.mark.parametrize(("probe", "expected", "expect"), CASES)
def test_variant(
    index: list[tuple[str, IdentityKeys]], probe: str, expected: str, expect: str
) -> None:
    ranked = rank(keys_for(probe), index)
    hard = {ref for ref, m in ranked if m.tier == "hard"}
    found = {ref for ref, _m in ranked}
    explained = [(ref, m.tier, m.reason_texts()) for ref, m in ranked]
    if expect == "block":
        assert hard == {expected}, explained
    elif expect == "surface":
        assert expected in found and hard <= {expected}, explained
    elif expect == "distinct":
        assert not hard, explained
    else:
        assert not found, explained
