"""Bulk customer import (crm.importer, manage.py import_customers): reading files, row
validation, duplicates against the database and within the file, writing, strict mode."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from openpyxl import Workbook

from crm import importer, services
from crm.identity.credit import credit_code_check_char, validate_credit_code
from crm.importer import (
    DatabaseLookup,
    ImportFileError,
    error_csv,
    import_customers,
    read_table,
    read_table_from_path,
    report_lines,
)
from crm.models import (
    Customer,
    CustomerPhone,
    EmploymentState,
    Industry,
    PossibleDuplicate,
    Role,
    Source,
    User,
)
from ownership.models import EventKind, OwnershipEvent
from tests.factories import UserFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HEADER = "external_ref,name,credit_code,province,city,address,phone,industry\n"
CODE_A = "91310115MA1K3X7N0A"  # valid (see tests/fixtures)
CODE_B = "91440300MA5F2K8R1A"

pytestmark = pytest.mark.django_db


def code(body17: str) -> str:
    return body17 + credit_code_check_char(body17)


def csv_file(tmp_path: Path, body: str, name: str = "c.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes((HEADER + body).encode(encoding))
    return path


def run(path: Path, *args: str) -> tuple[str, list[dict[str, Any]] | None]:
    out = io.StringIO()
    call_command("import_customers", str(path), *args, stdout=out)
    text = out.getvalue()
    return text, json.loads(text) if "--format=json" in args else None


def run_json(path: Path, *args: str) -> list[dict[str, Any]]:
    _text, rows = run(path, "--format=json", *args)
    assert rows is not None
    return rows


def by_ref(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["external_ref"]: row for row in rows}


# --- reading files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["customers_utf8.csv", "customers_utf8_bom.csv", "customers_gbk.csv", "customers.xlsx"],
)
def test_every_supported_format_reads_the_same_rows(name: str) -> None:
    table = read_table_from_path(FIXTURES / name)
    assert table.total == 7
    rows = dict(table.rows)
    assert rows[2]["name"] == "上海星澜软件科技有限公司"
    assert rows[2]["external_ref"] == "C001"
    assert rows[2]["credit_code"] == CODE_A
    assert rows[2]["phone"] == "13916881234"  # a number cell in the workbook, without ".0"
    assert rows[8]["name"] == "<b>粗体</b>网络科技有限公司"
    assert set(table.columns) == set(importer.FIELDS)
    assert table.ignored_columns in (["notes"], ["备注"])  # extra columns are ignored


def test_headers_match_whatever_the_case_spaces_and_underscores(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(" NAME ,External Ref,Credit-Code,电话\n华星科技有限公司,X1,,13800138000\n")
    table = read_table_from_path(path)
    assert table.rows == [
        (
            2,
            {
                "name": "华星科技有限公司",
                "external_ref": "X1",
                "credit_code": "",
                "phone": "13800138000",
            },
        )
    ]


def test_semicolon_and_tab_separated_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("名称\t电话\n华星科技有限公司\t13800138000\n", encoding="utf-8")
    assert read_table_from_path(path).rows[0][1]["phone"] == "13800138000"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("c.pdf", b"%PDF-1.4", "只能导入 .csv 和 .xlsx 文件"),
        ("c.csv", "名称\n华星\n".encode("utf-16"), "既不是 UTF-8 也不是 GBK/GB18030"),
        ("c.csv", b"\xff\xff\xfe\x80\x80\n", "既不是 UTF-8 也不是 GBK/GB18030"),
        ("c.csv", b"", "文件是空的"),
        ("c.csv", "电话,地址\n13800138000,北京\n".encode(), "没有名称列"),
        ("c.csv", "名称,电话\n".encode(), "没有数据行"),
        ("c.xlsx", b"not a zip at all", "不是有效的 .xlsx"),
        ("c.xls", b"\xd0\xcf\x11\xe0rest", "只能导入 .csv 和 .xlsx 文件"),
        ("c.xlsx", b"\xd0\xcf\x11\xe0rest", "旧版 .xls"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(
    name: str, data: bytes, message: str
) -> None:
    with pytest.raises(ImportFileError) as error:
        read_table(data, name)
    assert message in error.value.message


def test_a_file_over_the_configured_size_is_refused(tmp_path: Path, settings: Any) -> None:
    settings.IMPORT_MAX_BYTES = 100
    path = csv_file(tmp_path, "X1,华星科技有限公司,,,,,,\n" * 10)
    with pytest.raises(CommandError, match="大于"):
        run(path)
    assert not Customer.objects.exists()


def test_command_errors_exit_non_zero_and_write_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("电话\n13800138000\n")
    with pytest.raises(CommandError, match="没有名称列"):
        run(path)
    with pytest.raises(CommandError, match="无法打开"):
        run(tmp_path / "missing.csv")
    assert not Customer.objects.exists()


# --- rows ------------------------------------------------------------------------------------


def test_each_bad_value_is_an_error_with_a_chinese_message(tmp_path: Path) -> None:
    bad_code = CODE_A[:17] + ("0" if CODE_A[17] != "0" else "1")
    path = csv_file(
        tmp_path,
        "R1,,,,,,,\n"
        f"R2,{'长' * 201}有限公司,,,,,,\n"
        f"R3,华星科技有限公司,{bad_code},,,,,\n"
        "R4,远帆物流有限公司,,,,,12345,\n"
        "R5,好名字贸易有限公司,,,,,,\n",
    )
    rows = by_ref(run_json(path, "--dry-run"))
    assert rows["R1"]["status"] == "invalid"
    assert rows["R1"]["errors"] == [{"field": "name", "message": "请输入公司名称。"}]
    assert "最多允许 200 个" in rows["R2"]["errors"][0]["message"]
    with pytest.raises(ValueError) as refused:
        validate_credit_code(bad_code)
    assert "校验位" in str(refused.value)
    assert rows["R3"]["errors"] == [{"field": "credit_code", "message": str(refused.value)}]
    assert rows["R4"]["errors"][0]["field"] == "phone"
    assert "不是有效的电话号码" in rows["R4"]["errors"][0]["message"]
    assert rows["R5"]["status"] == "new"
    assert [row["row"] for row in rows.values()] == [2, 3, 4, 5, 6]


def test_markup_in_names_is_stored_as_text(tmp_path: Path) -> None:
    path = csv_file(tmp_path, 'X1,"<script>alert(1)</script>星河科技有限公司",,,,,,\n')
    run(path)
    assert Customer.objects.get().display_name == "<script>alert(1)</script>星河科技有限公司"


@pytest.fixture
def industries(db: None) -> None:
    """The seeded categories this module uses (another suite may have flushed the seed)."""
    for code_, name in (("software", "软件"), ("logistics", "物流"), ("culture-media", "文化传媒")):
        Industry.objects.get_or_create(code=code_, defaults={"name": name})


def test_industry_is_matched_by_name_code_or_unique_containment(
    tmp_path: Path, industries: None
) -> None:
    before = Industry.objects.count()
    path = csv_file(
        tmp_path,
        "I1,星河数码软件有限公司,,,,,,软件\n"
        "I2,远帆速运物流有限公司,,,,,,logistics\n"
        "I3,青禾影视文化有限公司,,,,,,文化\n"
        "I4,蓝鲸深空宇航有限公司,,,,,,宇宙航行\n",
    )
    rows = by_ref(run_json(path))
    industries = dict(Customer.objects.values_list("external_ref", "industry__name"))
    assert industries == {"I1": "软件", "I2": "物流", "I3": "文化传媒", "I4": None}
    assert rows["I4"]["status"] == "new"
    assert rows["I4"]["warnings"] == ["未知行业“宇宙航行”：导入的客户不设行业。"]
    assert Industry.objects.count() == before  # nothing created


# --- duplicates ------------------------------------------------------------------------------


def test_rows_are_checked_against_the_database(tmp_path: Path) -> None:
    existing = services.customer_create(
        actor=None,
        display_name="北京字节跳动科技有限公司",
        credit_code=CODE_B,
        phone="13912345678",
        external_ref="OLD1",
    )
    path = csv_file(
        tmp_path,
        "N1,字节跳动科技(北京)有限公司,,,,,,\n"  # same name written differently: hard
        "N2,远方实业有限公司,,,,,+86 139 1234 5678,\n"  # same mobile: hard
        f"N3,全新名字有限公司,{CODE_B},,,,,\n"  # same credit code: hard
        "N4,字节跳动传媒有限公司,,,,,,\n"  # another industry word: soft
        "N5,毫不相干咨询有限公司,,,,,,\n",
    )
    rows = by_ref(run_json(path, "--dry-run"))
    for ref in ("N1", "N2", "N3"):
        assert rows[ref]["status"] == "duplicate", ref
        match = rows[ref]["matches"][0]
        assert match["customer_id"] == existing.pk
        assert match["external_ref"] == "OLD1"
        assert match["tier"] == "hard"
        assert match["reasons"]
    assert rows["N4"]["status"] == "possible_duplicate"
    assert rows["N4"]["matches"][0]["tier"] == "soft"
    assert rows["N5"] == {
        "row": 6,
        "external_ref": "N5",
        "status": "new",
        "matches": [],
        "errors": [],
        "warnings": [],
        "customer_id": None,
    }
    assert Customer.objects.count() == 1  # dry run


def test_rows_are_checked_against_earlier_rows_of_the_file(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f"F1,上海星澜软件科技有限公司,{CODE_A},,,,13916881234,\n"
        "F2,星澜软件科技(上海)有限公司,,,,,,\n"  # name of F1: hard
        f"F3,别的名字有限公司,{CODE_A},,,,,\n"  # credit code of F1: hard
        "F4,星澜网络有限公司,,,,,,\n"  # F1's trade name, other industry: soft
        "F5,,,,,,,\n",
    )
    for args in (("--dry-run",), ("--dry-run", "--batch-size=1"), ()):
        rows = by_ref(run_json(path, *args))
        assert rows["F1"]["status"] == "new"
        for ref in ("F2", "F3"):
            assert rows[ref]["status"] == "duplicate"
            assert rows[ref]["matches"][0]["customer_id"] is None  # an in-file match
            assert rows[ref]["matches"][0]["external_ref"] == "F1"
            assert rows[ref]["matches"][0]["row"] == 2
        assert rows["F4"]["status"] == "possible_duplicate"
        assert rows["F4"]["matches"][0]["external_ref"] == "F1"
    f1 = Customer.objects.get(external_ref="F1")
    f4 = Customer.objects.get(external_ref="F4")
    assert Customer.objects.count() == 2
    assert f4.needs_duplicate_review and not f1.needs_duplicate_review
    record = PossibleDuplicate.objects.get()
    assert (record.customer, record.candidate) == (f4, f1)
    assert record.reasons and record.confirmed_distinct_by is None


def test_a_row_already_in_the_database_lists_only_the_database_customers(tmp_path: Path) -> None:
    services.customer_create(actor=None, display_name="苏州菊光实业有限公司", external_ref="B1")
    path = csv_file(
        tmp_path,
        "P1,武汉菊光实业有限责任公司,,,,,,\n"  # another region: soft, created
        "P2,菊光实业有限公司,,,,,,\n",  # no region: hard against both B1 and P1
    )
    rows = by_ref(run_json(path, "--dry-run"))
    assert rows["P1"]["status"] == "possible_duplicate"
    assert rows["P2"]["status"] == "duplicate"
    assert [m["external_ref"] for m in rows["P2"]["matches"]] == ["B1"]


def test_the_same_name_in_the_same_region_with_another_credit_code_is_a_duplicate(
    tmp_path: Path,
) -> None:
    """The matcher only calls it similar (codes differ), but the name key is unique."""
    existing = services.customer_create(
        actor=None, display_name="北京华星科技有限公司", credit_code=CODE_A
    )
    other = code("91110108MA01ABCD0")
    path = csv_file(tmp_path, f"S1,北京华星科技有限公司,{other},,,,,\n")
    rows = run_json(path)
    assert rows[0]["status"] == "duplicate"
    assert rows[0]["matches"][0]["customer_id"] == existing.pk
    assert rows[0]["matches"][0]["tier"] == "hard"
    assert Customer.objects.count() == 1


def test_external_references_must_be_unique(tmp_path: Path) -> None:
    services.customer_create(actor=None, display_name="老客户有限公司", external_ref="E1")
    path = csv_file(
        tmp_path,
        "E1,新客户甲有限公司,,,,,,\nE2,新客户乙有限公司,,,,,,\nE2,新客户丙有限公司,,,,,,\n",
    )
    rows = run_json(path)
    assert rows[0]["errors"] == [{"field": "external_ref", "message": "外部编号 E1 已被使用。"}]
    assert rows[1]["status"] == "new"
    assert rows[2]["errors"] == [
        {"field": "external_ref", "message": "外部编号 E2 已在第 3 行使用。"}
    ]


# --- writing ---------------------------------------------------------------------------------


def test_import_creates_customers_exactly_as_the_service_would(
    tmp_path: Path, industries: None
) -> None:
    path = csv_file(
        tmp_path,
        f"W1,上海星澜软件科技有限公司,{CODE_A},,,上海市浦东新区张江路88号,139-1688-1234,软件\n"
        "W2,深圳市云帆物流有限公司,,广东省,深圳市,,0755-86001234,\n",
    )
    run(path)
    imported = {c.external_ref: c for c in Customer.objects.all()}
    assert set(imported) == {"W1", "W2"}
    # the same data through the registration service
    expected: dict[str, Customer] = {}
    Customer.objects.all().delete()
    expected["W1"] = services.customer_create(
        actor=None,
        display_name="上海星澜软件科技有限公司",
        credit_code=CODE_A,
        address="上海市浦东新区张江路88号",
        phone="139-1688-1234",
        industry=Industry.objects.get(name="软件"),
        source=Source.IMPORT,
        external_ref="W1",
    )
    expected["W2"] = services.customer_create(
        actor=None,
        display_name="深圳市云帆物流有限公司",
        province="广东省",
        city="深圳市",
        phone="0755-86001234",
        source=Source.IMPORT,
        external_ref="W2",
    )
    fields = [
        "display_name", "legal_name", "credit_code", "address", "province", "city", "district",
        "division_code", "phone", "email", "industry_id", "source", "owner_id", "name_key",
        "name_region", "branch", "search_key", "pinyin_key", "email_domain",
        "needs_duplicate_review", "value_tier", "lifecycle", "stage",
    ]  # fmt: skip
    for ref, want in expected.items():
        got = imported[ref]
        assert {f: getattr(got, f) for f in fields} == {f: getattr(want, f) for f in fields}
        assert got.created_at is not None and got.updated_at is not None


def test_phones_are_stored_as_identity_keys(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "P1,星河数码科技有限公司,,,,,13916881234,\nP2,远帆物流有限公司,,,,,010-62345678,\n",
    )
    run(path)
    phones = dict(CustomerPhone.objects.values_list("customer__external_ref", "number"))
    assert phones == {"P1": "+8613916881234", "P2": "+861062345678"}
    assert CustomerPhone.objects.get(number="+8613916881234").is_mobile
    assert not CustomerPhone.objects.get(number="+861062345678").is_mobile


def test_without_owner_customers_go_to_the_pool_with_owner_they_belong_to_the_rep(
    tmp_path: Path, rep: User
) -> None:
    path = csv_file(tmp_path, "O1,星河数码科技有限公司,,,,,,\n")
    run(path)
    pooled = Customer.objects.get()
    assert pooled.owner is None and pooled.owned_since is None
    assert not OwnershipEvent.objects.filter(customer=pooled).exists()
    path = csv_file(tmp_path, "O2,远帆物流有限公司,,,,,,\nO3,青禾食品有限公司,,,,,,\n", "o.csv")
    run(path, f"--owner={rep.username}", "--batch-size=1")
    for ref in ("O2", "O3"):
        owned = Customer.objects.get(external_ref=ref)
        assert owned.owner == rep and owned.owned_since is not None
        # through the one writer of ownership: one ledger event per customer
        event = OwnershipEvent.objects.get(customer=owned)
        assert (event.from_owner, event.to_owner, event.actor) == (None, rep, None)
        assert event.kind == EventKind.ALLOCATED
        assert "o.csv" in event.reason


def test_customers_the_owner_may_not_take_stay_in_the_pool_with_a_note(
    tmp_path: Path, rep: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ownership import services as ownership_services

    def refuse(**kwargs: Any) -> None:
        raise ownership_services.OwnershipError("已达到持有上限。")

    monkeypatch.setattr(ownership_services, "ownership_allocate", refuse)
    path = csv_file(tmp_path, "O1,星河数码科技有限公司,,,,,,\n")
    rows = run_json(path, f"--owner={rep.username}")
    assert rows[0]["status"] == "new"
    assert rows[0]["warnings"] == ["留在公海：已达到持有上限。"]
    assert Customer.objects.get().owner is None


def test_an_unknown_or_unsuitable_owner_is_a_clear_error(
    tmp_path: Path, manager: User, rep: User
) -> None:
    path = csv_file(tmp_path, "O1,星河数码科技有限公司,,,,,,\n")
    with pytest.raises(CommandError, match="没有用户名为“nobody”的用户"):
        run(path, "--owner=nobody")
    with pytest.raises(CommandError, match="不能拥有客户"):
        run(path, f"--owner={manager.username}")
    User.objects.filter(pk=rep.pk).update(state=EmploymentState.DEPARTING)
    with pytest.raises(CommandError, match="不能拥有客户"):
        run(path, f"--owner={rep.username}")
    assert not Customer.objects.exists()


def test_strict_mode_writes_nothing_when_a_row_is_invalid_or_a_duplicate(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "S1,星河数码科技有限公司,,,,,,\n"
        "S2,远帆物流有限公司,,,,,,\n"
        "S3,星河数码科技有限公司,,,,,,\n",  # duplicate of S1
    )
    with pytest.raises(CommandError, match="严格模式"):
        run(path, "--strict", "--batch-size=1")
    assert not Customer.objects.exists()
    assert not CustomerPhone.objects.exists()
    clean = csv_file(
        tmp_path, "S1,星河数码科技有限公司,,,,,,\nS2,远帆物流有限公司,,,,,,\n", "ok.csv"
    )
    run(clean, "--strict")
    assert Customer.objects.count() == 2


def test_text_output_summarises_and_lists_problem_rows(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "T1,星河数码科技有限公司,,,,,,\nT2,,,,,,,\n")
    text, _rows = run(path, "--dry-run")
    assert "预演" in text
    assert "无效 1" in text
    assert "第 3 行 T2 [无效行] 请输入公司名称。" in text


def test_json_output_is_one_array_with_an_object_per_data_row(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "J1,星河数码科技有限公司,,,,,,\n\nJ2,远帆物流有限公司,,,,,,\n")
    _text, rows = run(path, "--dry-run", "--format=json")
    assert rows is not None
    assert [(r["row"], r["external_ref"], r["status"]) for r in rows] == [
        (2, "J1", "new"),
        (4, "J2", "new"),  # numbered like the spreadsheet; blank lines are skipped
    ]


def test_a_concurrent_registration_during_an_import_becomes_a_duplicate_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique constraints stay the guarantee: the batch insert fails, the batch is
    redone row by row through the service, and the collision becomes an answer."""
    original = DatabaseLookup.batch
    created: list[Customer] = []

    def racing_batch(self: DatabaseLookup, rows: Any) -> Any:
        found = original(self, rows)
        if not created:  # another rep registers the first row's company in between
            created.append(
                services.customer_create(actor=None, display_name="上海星澜软件科技有限公司")
            )
        return found

    monkeypatch.setattr(DatabaseLookup, "batch", racing_batch)
    path = csv_file(tmp_path, "C1,星澜软件科技(上海)有限公司,,,,,,\nC2,别的科技有限公司,,,,,,\n")
    rows = by_ref(run_json(path))
    assert rows["C1"]["status"] == "duplicate"
    assert rows["C1"]["matches"][0]["customer_id"] == created[0].pk
    assert rows["C2"]["status"] == "new" and rows["C2"]["customer_id"] is not None
    assert Customer.objects.count() == 2


def _generated_rows(count: int) -> Iterator[str]:
    chars = "华兴达博创新鑫泰丰源盛利恒瑞安康宏远通宇嘉和信德天正明辉永金隆海星成光联顺发中智凯汇"
    for i in range(count):
        a, b, c = chars[i % 41], chars[(i // 41) % 41], chars[(i // 7) % 41]
        yield f"G{i},{a}{b}{c}科技有限公司,,,,,1{3 + i % 7}{i:09d},\n"


def test_parallel_preparation_gives_the_same_answers(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "".join(_generated_rows(700)))
    table = read_table_from_path(path)
    single = import_customers(table, actor=None, dry_run=True, workers=1)
    parallel = import_customers(table, actor=None, dry_run=True, workers=2)
    assert [r.as_dict() for r in single.rows] == [r.as_dict() for r in parallel.rows]
    assert single.counts == parallel.counts


# --- the error report ------------------------------------------------------------------------


def test_error_report_is_excel_friendly_and_can_be_imported_again(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, "R1,=HYPERLINK(1),,,,,+8613800138000,\nR2,,,,,,,\nR3,好公司有限公司,,,,,,\n"
    )
    report = import_customers(read_table_from_path(path), actor=None, dry_run=True)
    data = error_csv(list(report_lines(report)))
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert (
        text.splitlines()[0] == "行号,状态,问题,外部编号,名称,统一社会信用代码,省,市,地址,电话,行业"
    )
    assert "R3" not in text  # only rows that will not be imported
    assert "'=HYPERLINK(1)" not in text  # R1 is a new customer, not in the report
    table = read_table(data, "again.csv")
    assert [raw["external_ref"] for _n, raw in table.rows] == ["R2"]


def test_formula_cells_are_neutralised_in_the_error_report(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "=cmd,,,,,,+8613800138000,\n")
    report = import_customers(read_table_from_path(path), actor=None, dry_run=True)
    text = error_csv(list(report_lines(report))).decode("utf-8-sig")
    assert "'=cmd" in text
    assert ",+8613800138000," in text  # a phone number stays a phone number


def test_workbook_with_a_formula_like_name_is_read_as_text(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["名称", "电话"])
    sheet.append(["华星科技有限公司", 13800138000])
    path = tmp_path / "w.xlsx"
    workbook.save(path)
    rows = run_json(path, "--dry-run")
    assert rows[0]["status"] == "new"


def test_importing_for_a_rep_requires_an_active_rep(rep: User) -> None:
    committee = UserFactory(role=Role.COMMITTEE)
    with pytest.raises(ImportFileError):
        importer.check_owner(committee)
    importer.check_owner(rep)


# --- the import answers like a registration (crm.duplicates / crm.identity.matcher) ------

LABELLED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "identity-dev"


def labelled_rows(name: str, limit: int) -> list[tuple[int, dict[str, str]]]:
    if not (LABELLED / name).exists():
        pytest.skip("the labelled set (shared/data/identity-dev) is not next to the repository")
    table = read_table_from_path(LABELLED / name)
    return table.rows[:limit]


@pytest.mark.slow
def test_database_matches_are_those_of_find_duplicates(tmp_path: Path) -> None:
    """The set-based batch look-ups retrieve what crm.duplicates retrieves, row by row."""
    from crm.duplicates import find_duplicates

    probes = labelled_rows("probes.csv", 400)  # skips when the labelled set is absent
    call_command("import_customers", str(LABELLED / "base.csv"), stdout=io.StringIO())
    table = importer.ImportTable(name="p.csv", rows=probes, columns=list(importer.FIELDS))
    report = import_customers(table, actor=None, dry_run=True, batch_size=97)
    for row in report.rows:
        raw = row.raw
        keys = services.keys_for(raw["name"], credit_code=raw.get("credit_code", ""),
                                 phones=[raw["phone"]] if raw.get("phone") else [])  # fmt: skip
        expected = {(m.customer.pk, m.tier) for m in find_duplicates(keys)}
        got = {(m.customer_id, m.tier) for m in row.matches if m.customer_id is not None}
        if row.errors:
            continue
        assert got == expected, (row.row, raw["name"])


def test_the_batch_look_up_of_external_refs_can_use_its_unique_index() -> None:
    """A batch asks for thousands of refs at once: the partial unique index must stay usable
    (a list of more than 100 values does not show the planner that none is empty). The credit
    codes' look-up is written the same way (_CODES_SQL)."""
    from django.db import connection

    refs = [f"R{i:05d}" for i in range(500)]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + importer._REFS_SQL, [refs])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "customer_unique_external_ref" in plan, plan


@pytest.mark.slow
def test_the_file_index_finds_what_comparing_with_every_row_finds() -> None:
    """Retrieval in the file is complete for the matcher's rules: ranking the index's
    candidates gives the same answer as ranking every earlier row."""
    from django.utils import timezone  # noqa: F401  (Django set up by pytest-django)

    from crm.identity.matcher import rank

    ctx = importer.PrepareContext(actor_id=None, industries={}, language="zh-hans")
    index = importer.FileIndex()
    stored = []
    for number, raw in labelled_rows("base.csv", 800):
        row = importer.prepare_row(number, raw, ctx)
        if row.keys is not None:
            stored.append(index.add(row))
    probes = [importer.prepare_row(n, raw, ctx) for n, raw in labelled_rows("probes.csv", 300)]
    for probe in probes:
        if probe.keys is None:
            continue
        everyone = rank(probe.keys, ((e.slot, e.keys) for e in stored), limit=10)
        found = rank(probe.keys, ((e.slot, e.keys) for e in index.candidates(probe.keys)), 10)
        assert {(s, m.tier) for s, m in found} == {(s, m.tier) for s, m in everyone}, probe.raw


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("北京星澜软件科技有限公司", "北京星兰软件科技有限公司"),  # one character changed
        ("北京星澜软件科技有限公司", "北京星澜澜软件科技有限公司"),  # one added
        ("星澜达软件科技有限公司", "星澜软件科技有限公司"),  # 3 -> 2 characters
        ("星澜软件科技有限公司", "澜星软件科技有限公司"),  # reordered
        ("星澜达软件科技有限公司", "星澜达远航软件科技有限公司"),  # contained
        ("智品科技有限公司", "致品科技有限公司"),  # same pinyin
        ("云帆网络科技有限公司", "云帆网落科技有限公司"),  # the slip crosses the industry
        ("杭州云帆科技有限公司", "杭州云航科技有限公司"),  # two characters, same region+industry
        ("Xinglan Technology Co., Ltd.", "星澜科技有限公司"),  # pinyin name
        ("星澜科技有限公司", "星澜贸易有限公司"),  # same trade name, another industry
    ],
)
def test_look_alikes_in_the_file_are_found_like_in_the_database(first: str, second: str) -> None:
    from crm.identity.matcher import compare

    ctx = importer.PrepareContext(actor_id=None, industries={}, language="zh-hans")
    a = importer.prepare_row(2, {"name": first}, ctx)
    b = importer.prepare_row(3, {"name": second}, ctx)
    assert a.keys is not None and b.keys is not None
    if compare(b.keys, a.keys) is None:
        pytest.skip("the matcher does not relate this pair (any more)")
    index = importer.FileIndex()
    entry = index.add(a)
    assert entry in index.candidates(b.keys)


# --- the writer thread (outside a caller's transaction) --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_writes_in_a_thread_give_what_writing_in_turn_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a transaction the batches are written by a thread of their own while the
    next ones are checked; the answers and the stored rows are those of writing in turn."""
    handed_over: list[int] = []
    submit = importer._BackgroundWriter.submit

    def counting_submit(self: Any, batch: Any) -> None:
        handed_over.append(len(batch))
        submit(self, batch)

    monkeypatch.setattr(importer._BackgroundWriter, "submit", counting_submit)
    body = "".join(_generated_rows(600)) + "D1,华兴达科技有限公司,,,,,,\n"
    table = read_table_from_path(csv_file(tmp_path, body))
    threaded = import_customers(table, actor=None, batch_size=70)
    stored = sorted(Customer.objects.values_list("name_key", "external_ref"))
    phones = CustomerPhone.objects.count()
    flags = PossibleDuplicate.objects.count()
    assert threaded.created == Customer.objects.count() == sum(handed_over) > 400
    Customer.objects.all().delete()

    with transaction.atomic():  # inside a transaction: written in turn
        in_turn = import_customers(table, actor=None, batch_size=70)
    assert sum(handed_over) == threaded.created  # not through the thread this time
    assert [r.as_dict() | {"customer_id": None} for r in threaded.rows] == [
        r.as_dict() | {"customer_id": None} for r in in_turn.rows
    ]
    assert threaded.counts == in_turn.counts
    assert sorted(Customer.objects.values_list("name_key", "external_ref")) == stored
    assert (CustomerPhone.objects.count(), PossibleDuplicate.objects.count()) == (phones, flags)
    assert all(r.customer_id for r in threaded.rows if r.status in ("new", "possible_duplicate"))


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_in_the_thread_stops_the_import_with_that_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken_copy(meta: Any, columns: Any, encoded: Any) -> list[int]:
        calls.append(len(encoded))
        raise RuntimeError("disk full")

    # the COPY every write of the import goes through (customers, phones, flags)
    monkeypatch.setattr(importer, "_copy", broken_copy)
    table = read_table_from_path(csv_file(tmp_path, "".join(_generated_rows(300))))
    with pytest.raises(RuntimeError, match="disk full"):
        import_customers(table, actor=None, batch_size=50)
    assert len(calls) < 6  # it stopped at the first failure, not after every batch
    assert not Customer.objects.exists()


def test_imported_customers_get_their_territory_at_once(
    tmp_path: Path, crm_admin: User, team: Any, other_team: Any
) -> None:
    from ownership.models import CustomerTerritory
    from ownership.territories.services import rule_set_activate
    from tests.ownership.territory_helpers import two_region_rule_set

    rule_set = two_region_rule_set(east=team, north=other_team)
    rule_set_activate(actor=crm_admin, rule_set=rule_set)
    path = csv_file(
        tmp_path,
        "T1,海淀一号科技有限公司,,北京市,北京市,北京市海淀区中关村大街1号,,\n"
        "T2,浦东二号贸易有限公司,,上海市,上海市,上海市浦东新区世纪大道100号,,\n",
    )
    run(path)
    placed = dict(
        CustomerTerritory.objects.filter(rule_set=rule_set).values_list(
            "customer__external_ref", "territory__name"
        )
    )
    assert placed == {"T1": "海淀区", "T2": "华东"}


def test_the_copy_writer_stores_what_the_orm_would_store(crm_admin: User) -> None:
    """insert_instances writes COPY's text format itself: every awkward value comes back as
    it went in, compared with the same customer saved by the ORM."""
    tricky = "反斜杠\\N 制表\t换行\n回车\r<b>&amp;</b> 'quote\" \\\\end"
    industry = Industry.objects.first()
    values: dict[str, Any] = {
        "display_name": tricky,
        "legal_name": "",
        "credit_code": "",
        "address": "北京市海淀区\\中关村\t1号",
        "industry": industry,
        "needs_duplicate_review": True,
        "source": Source.IMPORT,
        "created_by": crm_admin,
        "name_parts": {"v": 'x\\y\t"z"', "list": ["甲", None, 1.5, True], "nested": {"k": []}},
    }
    copied = Customer(**values, external_ref="COPY-1")
    importer.insert_instances([copied])
    saved = Customer(**values, external_ref="ORM-1")
    saved.save()
    fresh_copied = Customer.objects.get(pk=copied.pk)
    fresh_saved = Customer.objects.get(pk=saved.pk)
    skip = {"id", "external_ref", "created_at", "updated_at"}
    for f in Customer._meta.concrete_fields:
        if f.attname not in skip:
            assert getattr(fresh_copied, f.attname) == getattr(fresh_saved, f.attname), f.name
    assert fresh_copied.display_name == tricky
    assert fresh_copied.created_at is not None and fresh_copied._state.adding is False
    # ids come from the table's own sequence: the next ORM insert does not collide
    assert saved.pk > copied.pk


def test_a_prepared_row_is_stored_as_the_service_stores_the_same_customer(
    crm_admin: User, industries: None
) -> None:
    """prepare_row encodes the customer's columns for COPY (in the workers, for large files);
    insert_customers adds the id, the stamps and the review flag. Every column comes back as
    the registration service stores it, awkward characters included."""
    industry = Industry.objects.get(name="软件")
    raw = {
        "external_ref": "PR-1",
        "name": "上海星澜\\N软件科技有限公司",
        "credit_code": CODE_A,
        "province": "上海市",
        "city": "",
        "address": "上海市浦东新区张江路\t88号\\B座",
        "phone": "139-1688-1234",
        "industry": "软件",
    }
    ctx = importer.PrepareContext(
        actor_id=crm_admin.pk, industries=importer._industry_table(), language="zh-hans"
    )
    row = importer.prepare_row(2, raw, ctx)
    assert not row.errors and row.industry_id == industry.pk
    (imported_id,) = importer.insert_customers([(row, True)])
    imported = Customer.objects.get(pk=imported_id)
    Customer.objects.all().delete()
    registered = services.customer_create(
        actor=crm_admin,
        display_name=raw["name"],
        credit_code=raw["credit_code"],
        address=raw["address"],
        province=raw["province"],
        phone=raw["phone"],
        industry=industry,
        source=Source.IMPORT,
        external_ref=raw["external_ref"],
    )
    skip = {"id", "created_at", "updated_at", "needs_duplicate_review"}
    for f in Customer._meta.concrete_fields:
        if f.attname not in skip:
            assert getattr(imported, f.attname) == getattr(registered, f.attname), f.name
    assert imported.needs_duplicate_review is True
    assert imported.created_at == imported.updated_at is not None
    # ids come from the table's own sequence, as with insert_instances
    assert registered.pk > imported_id


def test_rows_given_as_values_are_stored_as_the_orm_stores_them() -> None:
    """insert_rows (the import's phones and possible-duplicate records): fields not given get
    their defaults, auto_now_add the time, JSON its value, awkward characters included."""
    first = services.customer_create(actor=None, display_name="星澜软件科技有限公司")
    second = services.customer_create(actor=None, display_name="远帆物流有限公司")
    reasons = ["同名\t换行\n反斜杠\\N", 'quote"']
    values: dict[str, Any] = {"candidate_id": first.pk, "score": 0.75, "reasons": reasons}
    (copied_id,) = importer.insert_rows(PossibleDuplicate, [{"customer_id": second.pk, **values}])
    saved = PossibleDuplicate.objects.create(
        customer_id=first.pk, **values | {"candidate_id": second.pk}
    )
    copied = PossibleDuplicate.objects.get(pk=copied_id)
    assert (copied.candidate_id, copied.score, copied.reasons) == (first.pk, 0.75, reasons)
    assert (copied.confirmed_distinct_by_id, copied.resolved_at) == (None, None)
    assert copied.created_at is not None and saved.pk > copied_id
    (phone_id,) = importer.insert_rows(
        CustomerPhone, [{"customer_id": first.pk, "number": "+8613916881234", "is_mobile": True}]
    )
    phone = CustomerPhone.objects.get(pk=phone_id)
    assert (phone.customer_id, phone.number, phone.is_mobile, phone.active) == (
        first.pk,
        "+8613916881234",
        True,
        True,  # the field's default
    )


def test_a_customer_built_by_position_is_the_one_built_by_keywords(crm_admin: User) -> None:
    values: dict[str, Any] = {
        "display_name": "星澜软件科技有限公司",
        "address": "上海市浦东新区张江路88号",
        "industry_id": None,
        "source": Source.IMPORT,
        "created_by_id": crm_admin.pk,
    }
    by_position = importer._new_customer(**values)
    by_keywords = Customer(**values)

    def state(customer: Customer) -> dict[str, Any]:
        return {k: v for k, v in vars(customer).items() if k != "_state"}

    assert state(by_position) == state(by_keywords)
    assert by_position._state.adding and by_position.pk is None


def test_the_copy_writer_refuses_a_value_it_cannot_encode() -> None:
    with pytest.raises(TypeError):
        importer._copy_text(object())


def test_the_import_keeps_what_it_built_out_of_the_collectors_walks_and_hands_it_back(
    tmp_path: Path,
) -> None:
    import gc

    frozen_meanwhile: list[int] = []
    thresholds_meanwhile: list[tuple[int, int, int]] = []
    thresholds = gc.get_threshold()

    def progress(done: int, total: int) -> None:
        frozen_meanwhile.append(gc.get_freeze_count())
        thresholds_meanwhile.append(gc.get_threshold())

    table = read_table_from_path(csv_file(tmp_path, "".join(_generated_rows(120))))
    report = importer.CustomerImporter(table, actor=None, batch_size=50, progress=progress).run()
    assert report.created > 0
    assert frozen_meanwhile and all(count > 0 for count in frozen_meanwhile)
    assert gc.get_freeze_count() == 0
    # full collections are rare meanwhile (young ones as usual), and as before afterwards
    assert all(
        t[:2] == thresholds[:2] and t[2] >= importer._FULL_COLLECTIONS_AFTER
        for t in thresholds_meanwhile
    )
    assert gc.get_threshold() == thresholds


def _worker_state(_item: object) -> tuple[int, int]:
    import gc
    import os

    return os.nice(0), gc.get_freeze_count()


def test_key_workers_yield_the_cpu_and_keep_what_they_inherit_out_of_the_collector() -> None:
    import multiprocessing
    import os

    ctx = importer.PrepareContext(actor_id=None, industries={}, language="zh-hans")
    pool = multiprocessing.get_context("fork").Pool(
        1, initializer=importer._init_worker, initargs=(ctx,)
    )
    try:
        ((niceness, frozen),) = pool.map(_worker_state, [None])
    finally:
        pool.terminate()
        pool.join()
    assert niceness == min(19, os.nice(0) + importer.WORKER_NICENESS)
    assert frozen > 0
