"""The demo organisation's logins, printed by `make run` and created by `seed_demo`."""

from __future__ import annotations

from dataclasses import dataclass

from crm.models import Role

DEMO_PASSWORD = "guishu-demo-2026"


@dataclass(frozen=True)
class DemoPerson:
    username: str
    display_name: str
    role: str
    team: str | None


DEMO_TEAMS: list[tuple[str, str | None, str]] = [
    # (team, parent team, manager username)
    ("华东销售部", None, "manager_east"),
    ("华北销售部", None, "manager_north"),
]

DEMO_PEOPLE: list[DemoPerson] = [
    DemoPerson("manager_east", "陈经理", Role.MANAGER, "华东销售部"),
    DemoPerson("manager_north", "赵经理", Role.MANAGER, "华北销售部"),
    DemoPerson("rep_wang", "王小明", Role.REP, "华东销售部"),
    DemoPerson("rep_li", "李娜", Role.REP, "华东销售部"),
    DemoPerson("rep_zhang", "张伟", Role.REP, "华东销售部"),
    DemoPerson("rep_liu", "刘洋", Role.REP, "华北销售部"),
    DemoPerson("rep_chen", "陈静", Role.REP, "华北销售部"),
    DemoPerson("rep_yang", "杨帆", Role.REP, "华北销售部"),
    DemoPerson("committee_sun", "孙主任", Role.COMMITTEE, None),
    DemoPerson("committee_zhou", "周委员", Role.COMMITTEE, None),
    DemoPerson("committee_wu", "吴委员", Role.COMMITTEE, None),
    DemoPerson("admin", "系统管理员", Role.ADMIN, None),
]


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, password, role label) for every demo person."""
    return [(p.username, DEMO_PASSWORD, str(Role(p.role).label)) for p in DEMO_PEOPLE]


@dataclass(frozen=True)
class DemoCustomer:
    name: str
    address: str
    phone: str
    industry: str
    owner: str | None
    stage: int
    tier: str
    contact: str


# Realistic but fictitious companies; owners None form the public pool (公海).
DEMO_CUSTOMERS: list[DemoCustomer] = [
    DemoCustomer(
        "上海云帆信息技术有限公司",
        "上海市浦东新区张江路88号",
        "13816620001",
        "信息技术",
        "rep_wang",
        50,
        "A",
        "周立",
    ),
    DemoCustomer(
        "杭州青禾生物科技有限公司",
        "浙江省杭州市西湖区文三路12号",
        "13905710002",
        "生物科技",
        "rep_wang",
        25,
        "B",
        "沈佳",
    ),
    DemoCustomer(
        "苏州恒远机械股份有限公司",
        "江苏省苏州市吴中区东吴北路5号",
        "13915120003",
        "机械",
        "rep_wang",
        75,
        "A",
        "顾强",
    ),
    DemoCustomer(
        "南京智联物流有限公司",
        "江苏省南京市江宁区胜太路66号",
        "13951730004",
        "物流",
        "rep_wang",
        0,
        "C",
        "孙明",
    ),
    DemoCustomer(
        "宁波海川贸易有限公司",
        "浙江省宁波市鄞州区天童南路9号",
        "13805740005",
        "贸易",
        "rep_li",
        100,
        "B",
        "陈红",
    ),
    DemoCustomer(
        "合肥星辰电子科技有限公司",
        "安徽省合肥市高新区创新大道2号",
        "13965530006",
        "电子",
        "rep_li",
        50,
        "B",
        "许峰",
    ),
    DemoCustomer(
        "无锡绿源环保科技有限公司",
        "江苏省无锡市滨湖区太湖大道7号",
        "13961860007",
        "环保科技",
        "rep_li",
        25,
        "C",
        "钱敏",
    ),
    DemoCustomer(
        "上海明德教育科技有限公司",
        "上海市徐汇区漕溪北路18号",
        "13611730008",
        "教育",
        "rep_zhang",
        0,
        "D",
        "吴静",
    ),
    DemoCustomer(
        "温州瑞丰食品有限公司",
        "浙江省温州市鹿城区车站大道3号",
        "13857770009",
        "食品",
        "rep_zhang",
        75,
        "B",
        "林涛",
    ),
    DemoCustomer(
        "常州新纪元新材料有限公司",
        "江苏省常州市武进区常武中路21号",
        "13961110010",
        "新材料",
        "rep_zhang",
        25,
        "A",
        "蒋磊",
    ),
    DemoCustomer(
        "北京华信软件股份有限公司",
        "北京市海淀区中关村大街27号",
        "13901010011",
        "软件",
        "rep_liu",
        50,
        "A",
        "王磊",
    ),
    DemoCustomer(
        "天津港联物流集团有限公司",
        "天津市滨海新区港城大道8号",
        "13802020012",
        "物流",
        "rep_liu",
        25,
        "B",
        "刘婷",
    ),
    DemoCustomer(
        "石家庄康泰医药有限公司",
        "河北省石家庄市长安区中山东路15号",
        "13903110013",
        "医药",
        "rep_liu",
        100,
        "A",
        "赵刚",
    ),
    DemoCustomer(
        "济南鲁能能源科技有限公司",
        "山东省济南市历下区经十路99号",
        "13805310014",
        "能源",
        "rep_chen",
        0,
        "C",
        "张敏",
    ),
    DemoCustomer(
        "青岛蓝海网络科技有限公司",
        "山东省青岛市崂山区香港东路6号",
        "13906320015",
        "互联网",
        "rep_chen",
        75,
        "B",
        "马超",
    ),
    DemoCustomer(
        "太原晋商贸易有限公司",
        "山西省太原市小店区长风街10号",
        "13903510016",
        "贸易",
        "rep_chen",
        25,
        "D",
        "郭亮",
    ),
    DemoCustomer(
        "北京京华文化传媒有限公司",
        "北京市朝阳区建国路81号",
        "13911010017",
        "文化传媒",
        "rep_yang",
        50,
        "B",
        "杨洋",
    ),
    DemoCustomer(
        "大连海韵食品有限公司",
        "辽宁省大连市中山区人民路20号",
        "13904110018",
        "食品",
        "rep_yang",
        0,
        "C",
        "邓华",
    ),
    # The public pool.
    DemoCustomer(
        "嘉兴禾丰农业科技有限公司",
        "浙江省嘉兴市南湖区中环南路1号",
        "13905730019",
        "农业",
        None,
        25,
        "C",
        "冯雪",
    ),
    DemoCustomer(
        "徐州徐工配件有限公司",
        "江苏省徐州市云龙区和平路4号",
        "13952160020",
        "机械",
        None,
        0,
        "D",
        "彭飞",
    ),
    DemoCustomer(
        "郑州中原建设工程有限公司",
        "河南省郑州市金水区花园路30号",
        "13903710021",
        "建筑工程",
        None,
        0,
        "B",
        "曹阳",
    ),
    DemoCustomer(
        "保定长城零售有限公司",
        "河北省保定市竞秀区朝阳北大街2号",
        "13903120022",
        "零售",
        None,
        25,
        "C",
        "田野",
    ),
    DemoCustomer(
        "烟台仙境咨询服务有限公司",
        "山东省烟台市芝罘区南大街11号",
        "13905350023",
        "咨询服务",
        None,
        0,
        "D",
        "袁媛",
    ),
    DemoCustomer(
        "扬州运河文化传媒有限公司",
        "江苏省扬州市广陵区文昌中路8号",
        "13905140024",
        "文化传媒",
        None,
        50,
        "B",
        "蔡琳",
    ),
]
