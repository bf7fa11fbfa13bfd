"""Seed the industry table with common Chinese industry categories (editable in the admin)."""

from typing import Any

from django.db import migrations

INDUSTRIES = [
    ("it", "信息技术"),
    ("software", "软件"),
    ("internet", "互联网"),
    ("electronics", "电子"),
    ("manufacturing", "制造业"),
    ("machinery", "机械"),
    ("new-materials", "新材料"),
    ("energy", "能源"),
    ("environmental", "环保科技"),
    ("biotech", "生物科技"),
    ("pharma", "医药"),
    ("healthcare", "医疗健康"),
    ("education", "教育"),
    ("culture-media", "文化传媒"),
    ("finance", "金融"),
    ("real-estate", "房地产"),
    ("construction", "建筑工程"),
    ("logistics", "物流"),
    ("trade", "贸易"),
    ("retail", "零售"),
    ("food", "食品"),
    ("agriculture", "农业"),
    ("consulting", "咨询服务"),
    ("other", "其他"),
]


def seed(apps: Any, schema_editor: Any) -> None:
    industry = apps.get_model("crm", "Industry")
    for order, (code, name) in enumerate(INDUSTRIES):
        industry.objects.get_or_create(code=code, defaults={"name": name, "sort_order": order})


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_customers_contacts_follow_ups")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
