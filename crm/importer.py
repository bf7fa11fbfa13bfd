"""Bulk customer import (批量导入): read a CSV or XLSX file, check every row against the
database and against the earlier rows of the same file, and create the new customers.

The rules are those of ``services.customer_create(..., allow_possible_duplicates=True,
source="import")`` — the same cleaners, the same identity keys (``services._apply_identity``)
and the same duplicate check (``crm.identity.matcher.rank`` over the candidates
``crm.duplicates.candidate_ids`` retrieves) — applied set-based, so that a 100,000-row file
takes a minute or two, not hours:

* keys are computed in Python (in worker processes for large files);
* the database candidates of a whole batch (credit codes, phones, name keys, the trigram
  look-ups of crm.duplicates) are fetched in a handful of LATERAL queries;
* earlier rows of the file are held in an in-memory index (``FileIndex``) built on the
  matcher's rules, so a dry run sees them exactly as the real run sees the rows it created;
* new customers, their phones and their possible-duplicate records are inserted in one
  statement per table and batch, one transaction per batch. The unique constraints stay the
  guarantee: a batch that violates one (a concurrent registration) is redone row by row
  through ``services.customer_create``, which answers with a collision;
* those writes run in a writer thread with its own connection while the next batch is
  checked (``_BackgroundWriter``): the checks never need the rows the import itself wrote
  (they come from the FileIndex), and on two cores PostgreSQL's half of the work then
  overlaps Python's. Not inside a caller's transaction (which the writer's connection could
  not see) nor for --strict (one transaction for the whole file): there the batches are
  written in turn.

New customers start in the public pool; with an owner, each is then handed to that rep
through the one writer of ownership (settings.IMPORT_OWNER_SERVICE), ledger event included.

A row that already exists in the database (a hard match there) is answered with those
customers only: it is skipped, and its look-alikes in the file are compared with the same
customer when their turn comes.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import functools
import gc
import io
import json
import logging
import multiprocessing
import os
import queue
import re
import threading
import time
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, overload

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm import services, signals
from crm.duplicates import (
    FUZZY_CANDIDATES,
    LOOKUP_SQL,
    MAX_CANDIDATES,
    TRIGRAM_THRESHOLD,
    FuzzyProbe,
    fuzzy_probes,
)
from crm.errors import DomainError
from crm.identity.matcher import IdentityKeys, Match, rank, stored_keys
from crm.identity.normalize import is_too_short_for_fuzzy
from crm.identity.phones import is_mobile
from crm.models import (
    Customer,
    CustomerPhone,
    EmploymentState,
    ImportJob,
    ImportStatus,
    Industry,
    Role,
    Source,
    User,
)
from crm.models import PossibleDuplicate as PossibleDuplicateRecord
from crm.selectors import teams_managed_by

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Rows checked and written together: large enough that the per-batch queries, commits and
# hand-overs to the writer thread cost little per row (500 was 11% slower on 100,000 rows).
DEFAULT_BATCH_SIZE = 2000
# Files smaller than this are prepared in-process: starting workers costs more than it saves.
PARALLEL_MIN_ROWS = 5000
_CHUNK = 250
WORKER_NICENESS = 10
EXTERNAL_REF_MAX = 64

STATUS_NEW = "new"
STATUS_DUPLICATE = "duplicate"
STATUS_POSSIBLE = "possible_duplicate"
STATUS_INVALID = "invalid"
STATUSES = (STATUS_NEW, STATUS_DUPLICATE, STATUS_POSSIBLE, STATUS_INVALID)
PROBLEM_STATUSES = frozenset({STATUS_DUPLICATE, STATUS_POSSIBLE, STATUS_INVALID})


# During an import, a full collection of Python's cycle collector only after this many
# collections of the middle generation (10 by default): see CustomerImporter._loop.
_FULL_COLLECTIONS_AFTER = 1000


def max_upload_bytes() -> int:
    return int(getattr(settings, "IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def status_label(status: str) -> str:
    return {
        STATUS_NEW: _("New customer"),
        STATUS_DUPLICATE: _("Duplicate"),
        STATUS_POSSIBLE: _("Possible duplicate"),
        STATUS_INVALID: _("Invalid row"),
    }.get(status, status)


class ImportFileError(DomainError):
    """The file as a whole cannot be imported (format, encoding, size, columns, owner)."""


# --------------------------------------------------------------------------------------------
# reading the file
# --------------------------------------------------------------------------------------------

FIELDS = ("external_ref", "name", "credit_code", "province", "city", "address", "phone", "industry")

# Header spellings, compared after NFKC, lower-casing and removing spaces, "_" and "-".
_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "external_ref": ("externalref", "ref", "外部编号", "客户编号"),
    "name": ("name", "名称", "客户名称", "公司名称", "企业名称"),
    "credit_code": ("creditcode", "统一社会信用代码", "社会信用代码", "信用代码"),
    "province": ("province", "省", "省份"),
    "city": ("city", "市", "城市"),
    "address": ("address", "地址", "详细地址"),
    "phone": ("phone", "电话", "联系电话", "手机", "手机号"),
    "industry": ("industry", "行业"),
}
_HEADER_INDEX = {alias: name for name, aliases in _HEADER_ALIASES.items() for alias in aliases}
_ALLOWED_SUFFIXES = (".csv", ".xlsx")


def _header_key(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).replace("\ufeff", "")
    return re.sub(r"[\s_\-]", "", text).lower()


@dataclass
class ImportTable:
    """The data rows of a file, mapped to the import's field names."""

    name: str
    rows: list[tuple[int, dict[str, str]]]
    columns: list[str]  # the import fields found
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rows)


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as text: whole numbers without ".0" (phone numbers, codes)."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return str(value).strip()


def _decode(data: bytes) -> str:
    # Excel saves "CSV UTF-8" with a BOM and plain "CSV" in the system code page (GBK on a
    # Chinese Windows); GB18030 is a superset of GBK and GB2312.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break  # UTF-16 or binary data that happened to decode
        return text
    raise ImportFileError(
        _(
            "The file could not be read as text: it is neither UTF-8 nor GBK/GB18030. "
            "In Excel, save it as “CSV UTF-8” or as an .xlsx workbook and try again."
        )
    )


def _table_from_records(name: str, records: Iterable[tuple[int, Sequence[str]]]) -> ImportTable:
    iterator = iter(records)
    header: Sequence[str] | None = None
    for _number, cells in iterator:
        if any(cell.strip() for cell in cells):
            header = cells
            break
    if header is None:
        raise ImportFileError(_("The file is empty."))
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for position, cell in enumerate(header):
        target = _HEADER_INDEX.get(_header_key(cell))
        if target is None or target in positions:
            if cell.strip():
                ignored.append(cell.strip())
            continue
        positions[target] = position
    if "name" not in positions:
        raise ImportFileError(
            _(
                "The file has no name column. The first row must hold the column names, "
                "one of them “name” or “名称”."
            )
        )
    rows: list[tuple[int, dict[str, str]]] = []
    for number, cells in iterator:
        if not any(cell.strip() for cell in cells):
            continue
        rows.append(
            (
                number,
                {
                    target: (cells[pos].strip() if pos < len(cells) else "")
                    for target, pos in positions.items()
                },
            )
        )
    if not rows:
        raise ImportFileError(_("The file has column names but no data rows."))
    columns = [name for name in FIELDS if name in positions]
    return ImportTable(name=name, rows=rows, columns=columns, ignored_columns=ignored)


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    # Numbered like the spreadsheet rows (header = 1), also when a quoted cell spans lines.
    yield from enumerate(reader, 1)


def _xlsx_records(data: bytes) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise ImportFileError(_("The file is not a valid .xlsx workbook.")) from error
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
            yield number, [_cell_text(value) for value in values]
    finally:
        workbook.close()


def read_table(data: bytes, name: str) -> ImportTable:
    """Parse an uploaded file's bytes; ImportFileError with a clear message if impossible."""
    suffix = Path(name).suffix.lower()
    if suffix not in _ALLOWED_SUFFIXES:
        raise ImportFileError(
            _("Only .csv and .xlsx files can be imported, not “%(name)s”.") % {"name": name}
        )
    limit = max_upload_bytes()
    if len(data) > limit:
        raise ImportFileError(
            _("The file is larger than %(limit)s MB; split it into smaller files.")
            % {"limit": f"{limit / 1024 / 1024:g}"}
        )
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            _(
                "This is an old .xls workbook (or a password-protected one). "
                "Save it as .xlsx or “CSV UTF-8” and try again."
            )
        )
    try:
        if data.startswith(b"PK\x03\x04"):
            return _table_from_records(name, _xlsx_records(data))
        if suffix == ".xlsx":
            raise ImportFileError(_("The file is not a valid .xlsx workbook."))
        return _table_from_records(name, _csv_records(_decode(data)))
    except csv.Error as error:
        raise ImportFileError(
            _("The file is not a valid CSV file: %(error)s") % {"error": error}
        ) from error


def read_table_from_path(path: str | os.PathLike[str]) -> ImportTable:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ImportFileError(_("The file %(name)s cannot be opened.") % {"name": path}) from error
    if size > max_upload_bytes():
        raise ImportFileError(
            _("The file is larger than %(limit)s MB; split it into smaller files.")
            % {"limit": f"{max_upload_bytes() / 1024 / 1024:g}"}
        )
    return read_table(path.read_bytes(), path.name)


def read_table_from_file(file: File[Any] | IO[bytes], name: str) -> ImportTable:
    size = getattr(file, "size", None)
    if size is not None and size > max_upload_bytes():
        raise ImportFileError(
            _("The file is larger than %(limit)s MB; split it into smaller files.")
            % {"limit": f"{max_upload_bytes() / 1024 / 1024:g}"}
        )
    file.seek(0)
    data = file.read(max_upload_bytes() + 1)
    file.seek(0)
    return read_table(bytes(data), name)


# --------------------------------------------------------------------------------------------
# identity keys with their derived sets computed once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ImportKeys(IdentityKeys):
    """IdentityKeys whose mobiles / landlines / region_code are computed once, not at every
    compare() (each is a phonenumbers parse; an import compares hundreds of thousands of
    pairs). Same values, so the matcher's answers are the same."""

    cached_mobiles: frozenset[str] = frozenset()
    cached_landlines: frozenset[str] = frozenset()
    cached_region_code: str = ""
    # whether the search key is worth a trigram search (is_too_short_for_fuzzy is not cheap):
    # answered for trade names of _FUZZY_TRADE characters or more only, the only ones the
    # FileIndex searches by trigrams (False for shorter ones, most Chinese names)
    fuzzy_search: bool = False

    @property
    def mobiles(self) -> frozenset[str]:
        return self.cached_mobiles

    @property
    def landlines(self) -> frozenset[str]:
        return self.cached_landlines

    @property
    def region_code(self) -> str:
        return self.cached_region_code


# The shortest trade name the FileIndex searches by trigrams (FileIndex.candidates).
_FUZZY_TRADE = 4


def import_keys(keys: IdentityKeys) -> IdentityKeys:
    mobiles = frozenset(number for number in keys.phones if is_mobile(number))
    return _ImportKeys(
        name=keys.name,
        credit_code=keys.credit_code,
        phones=keys.phones,
        email_domain=keys.email_domain,
        cached_mobiles=mobiles,
        cached_landlines=frozenset(keys.phones) - mobiles,
        cached_region_code=keys.region_code,
        fuzzy_search=len(keys.name.trade_name) >= _FUZZY_TRADE
        and bool(keys.name.search_key)
        and not is_too_short_for_fuzzy(keys.name.search_key),
    )


def _fuzzy_search(keys: IdentityKeys) -> bool:
    """Whether a trigram search is worth it; only asked for trade names of _FUZZY_TRADE
    characters or more."""
    if isinstance(keys, _ImportKeys):
        return keys.fuzzy_search
    return bool(keys.name.search_key) and not is_too_short_for_fuzzy(keys.name.search_key)


# --------------------------------------------------------------------------------------------
# preparing a row (pure: runs in worker processes for large files)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareContext:
    actor_id: int | None
    industries: dict[str, int]  # normalised name or code -> id
    language: str


@dataclass
class PreparedRow:
    row: int
    raw: dict[str, str]
    external_ref: str
    errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    keys: IdentityKeys | None = None
    phones: list[str] = field(default_factory=list)  # E.164
    # The customer the row becomes (when its name is valid). Not a Customer instance: a
    # model instance is a fifth of a row's preparing and, pickled back from a worker, a
    # third of what the importing process spent receiving it. What the import needs of it:
    display_name: str = ""
    industry_id: int | None = None
    # the key of the unique constraint customer_unique_name_key, if the row has one
    name_triple: tuple[str, str, str] | None = None
    # its columns in COPY's text format (_customer_copy().columns), encoded where the
    # instance was built: only the id, the time stamps and the review flag are added later
    copy_text: str = ""


# What a worker sends back for a row: PreparedRow's fields after `raw` (the importing
# process has the row's number and cells already), as a plain tuple (cheap to pickle).
_Packed = tuple[
    str,
    dict[str, str],
    list[str],
    IdentityKeys | None,
    list[str],
    str,
    int | None,
    tuple[str, str, str] | None,
    str,
]


def _pack(row: PreparedRow) -> _Packed:
    return (
        row.external_ref,
        row.errors,
        row.warnings,
        row.keys,
        row.phones,
        row.display_name,
        row.industry_id,
        row.name_triple,
        row.copy_text,
    )


def _unpack(number: int, raw: dict[str, str], packed: _Packed) -> PreparedRow:
    return PreparedRow(number, raw, *packed)


@dataclass(frozen=True)
class _CustomerCopy:
    """How a new customer is written with COPY: the id and the columns set when its batch is
    written come first; `encoded`, the rest, is what prepare_row encodes."""

    columns: list[str]  # database column names, in COPY order
    encoded: list[tuple[str, Callable[[Any], str]]]  # (attname, encoder) after the stamps


@functools.cache
def _customer_copy() -> _CustomerCopy:
    meta = Customer._meta
    assert meta.pk is not None
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    first = ["needs_duplicate_review", "created_at", "updated_at"]
    # The stamps are auto_now(_add), set per batch as insert_instances sets them.
    assert {f.attname for f in fields if _stamped(f)} == set(first[1:])
    rest = [f for f in fields if f.attname not in first]
    by_name = {f.attname: f for f in fields}
    return _CustomerCopy(
        columns=[meta.pk.column, *(by_name[name].column for name in first)]
        + [f.column for f in rest],
        encoded=[(f.attname, _copy_encoder(f)) for f in rest],
    )


def _industry_key(text: str) -> str:
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", text)).lower()


def match_industry(text: str, industries: Mapping[str, int]) -> int | None:
    """The configured industry a cell names: by name or code, else the only industry whose
    name contains the cell or is contained in it (文化 → 文化传媒, 教育科技 → 教育). Nothing is
    created; ambiguous or unknown text gives None."""
    key = _industry_key(text)
    if key in industries:
        return industries[key]
    if len(key) < 2:
        return None
    found = {
        pk for name, pk in industries.items() if len(name) >= 2 and (key in name or name in key)
    }
    return found.pop() if len(found) == 1 else None


@functools.cache
def _customer_defaults() -> tuple[list[Any], dict[str, int], list[tuple[int, Any]]]:
    """Every concrete field's default in field order, the position of each attname, and the
    fields whose default is made per instance (a callable)."""
    fields = Customer._meta.concrete_fields
    return (
        [f.get_default() for f in fields],
        {f.attname: i for i, f in enumerate(fields)},
        [(i, f) for i, f in enumerate(fields) if f.has_default() and callable(f.default)],
    )


def _new_customer(**values: Any) -> Customer:
    """Customer(**values) by position, the way the ORM builds the rows it reads: the same
    instance (every field not given has its default) at a third of the cost, a tenth of
    preparing a row. Attnames only (industry_id, not industry)."""
    defaults, positions, made = _customer_defaults()
    args = defaults.copy()
    for i, f in made:
        args[i] = f.get_default()
    for attname, value in values.items():
        args[positions[attname]] = value
    return Customer(*args)


def prepare_row(number: int, raw: Mapping[str, str], ctx: PrepareContext) -> PreparedRow:
    """Validate one row with the service's cleaners and compute its identity keys."""
    external_ref = raw.get("external_ref", "").strip()
    row = PreparedRow(row=number, raw=dict(raw), external_ref=external_ref)
    values: dict[str, str] = {}
    for name, cleaner, value in (
        ("name", services.clean_customer_name, raw.get("name", "")),
        ("credit_code", services.clean_credit_code, raw.get("credit_code", "")),
        ("phone", services.clean_phone, raw.get("phone", "")),
    ):
        try:
            values[name] = cleaner(value)
        except services.CustomerInvalid as error:
            row.errors[name] = "; ".join(str(message) for message in error.errors.values())
    if len(external_ref) > EXTERNAL_REF_MAX:
        row.errors["external_ref"] = _(
            "The external reference has more than %(max)d characters."
        ) % {"max": EXTERNAL_REF_MAX}
    industry_id = None
    industry = raw.get("industry", "").strip()
    if industry:
        industry_id = match_industry(industry, ctx.industries)
        if industry_id is None:
            row.warnings.append(
                _("Unknown industry “%(industry)s”: the customer is imported without one.")
                % {"industry": industry}
            )
    address = raw.get("address", "").strip()
    if len(address) > 255:
        row.warnings.append(_("The address was cut to 255 characters."))
    if "name" not in values:
        return row
    row.phones = [values["phone"]] if values.get("phone") else []
    # Field by field as services.customer_create builds it, so the stored data and the
    # identity keys (services._apply_identity) cannot drift from a registration's.
    customer = _new_customer(
        display_name=values["name"],
        legal_name="",
        credit_code=values.get("credit_code", ""),
        address=address[:255],
        province=raw.get("province", "").strip()[:32],
        city=raw.get("city", "").strip()[:32],
        phone=raw.get("phone", "").strip()[:32],
        industry_id=industry_id,
        source=Source.IMPORT,
        external_ref=external_ref[:EXTERNAL_REF_MAX],
        created_by_id=ctx.actor_id,
    )
    row.keys = import_keys(services._apply_identity(customer, row.phones))
    row.display_name = customer.display_name
    row.industry_id = customer.industry_id
    if customer.name_key:
        row.name_triple = (customer.name_key, customer.name_region, customer.branch)
    row.copy_text = "\t".join(
        encode(getattr(customer, attname)) for attname, encode in _customer_copy().encoded
    )
    return row


_worker_context: PrepareContext | None = None
_worker_rows: Sequence[tuple[int, dict[str, str]]] = ()


def _init_worker(ctx: PrepareContext, rows: Sequence[tuple[int, dict[str, str]]] = ()) -> None:
    global _worker_context, _worker_rows
    # What the worker inherited stays for its whole life: out of the cycle collector's walks
    # (which would also copy every inherited page the walk touches).
    gc.freeze()
    # The importing process is the one that cannot be parallel (it matches and writes in
    # order): workers parsing ahead yield it the CPU, and yield to web requests likewise.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    _worker_context = ctx
    # The rows, inherited through fork (not pickled): a task is only a range of them.
    _worker_rows = rows
    translation.activate(ctx.language)


def _prepare_chunk(bounds: tuple[int, int]) -> list[_Packed]:
    assert _worker_context is not None
    start, stop = bounds
    return [
        _pack(prepare_row(number, raw, _worker_context)) for number, raw in _worker_rows[start:stop]
    ]


def default_workers(rows: int) -> int:
    if rows < PARALLEL_MIN_ROWS or multiprocessing.current_process().daemon:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def _prepared(
    rows: list[tuple[int, dict[str, str]]], ctx: PrepareContext, workers: int
) -> Iterator[PreparedRow]:
    # Celery's prefork children are daemonic and may not start processes of their own.
    if workers <= 1 or len(rows) < 2 * _CHUNK or multiprocessing.current_process().daemon:
        for number, raw in rows:
            yield prepare_row(number, raw, ctx)
        return
    chunks = [(i, min(i + _CHUNK, len(rows))) for i in range(0, len(rows), _CHUNK)]
    # fork: the children inherit the configured Django, the loaded identity tables and the
    # rows; they never touch the database connection they inherit.
    pool = multiprocessing.get_context("fork").Pool(
        workers, initializer=_init_worker, initargs=(ctx, rows)
    )
    try:
        for (start, stop), packed in zip(chunks, pool.imap(_prepare_chunk, chunks), strict=True):
            for (number, raw), item in zip(rows[start:stop], packed, strict=True):
                yield _unpack(number, raw, item)
    finally:
        pool.terminate()
        pool.join()


# --------------------------------------------------------------------------------------------
# the in-memory index over earlier rows of the file
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
# A trigram shared by more rows than this says nothing about any of them; candidates are
# still found through their rarer trigrams and then scored on all of them.
_COMMON_TRIGRAM = 5000
_BUCKET = 10  # rows kept per exact key


def trigrams(text: str) -> frozenset[str]:
    """pg_trgm's trigrams: each word lower-cased, padded with two spaces before, one after."""
    grams: set[str] = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return frozenset(grams)


@dataclass
class FileEntry:
    """An earlier row of the file that is (or in a dry run would be) created."""

    slot: int
    row: int
    external_ref: str
    name: str
    keys: IdentityKeys
    name_triple: tuple[str, str, str] | None
    customer_id: int | None = None  # once written
    alive: bool = True


class _TrigramIndex:
    """Texts found by shared trigrams. A text added is indexed when the index is next
    searched, in the order added (the same postings as indexing it at once): the index of
    every name's pinyin is searched only for names written in latin letters, which most
    files have few of, and computing the trigrams of every name for it had been a sixth of
    the file index's time."""

    def __init__(self) -> None:
        self.postings: dict[str, list[int]] = {}
        self.grams: dict[int, frozenset[str]] = {}
        self._pending: list[tuple[int, str]] = []

    def add(self, slot: int, text: str) -> None:
        self._pending.append((slot, text))

    def _index_pending(self) -> None:
        for slot, text in self._pending:
            grams = trigrams(text)
            if not grams:
                continue
            self.grams[slot] = grams
            for gram in grams:
                self.postings.setdefault(gram, []).append(slot)
        self._pending.clear()

    def search(self, text: str, limit: int, threshold: float = TRIGRAM_THRESHOLD) -> list[int]:
        if self._pending:
            self._index_pending()
        if not self.grams:
            return []
        query = trigrams(text)
        if not query:
            return []
        counts: Counter[int] = Counter()
        for gram in query:
            slots = self.postings.get(gram)
            if slots and len(slots) <= _COMMON_TRIGRAM:
                counts.update(slots)
        scored = []
        for slot, _shared in counts.most_common(limit * 4):
            grams = self.grams[slot]
            shared = len(query & grams)
            similarity = shared / (len(query) + len(grams) - shared)
            if similarity >= threshold:
                scored.append((similarity, slot))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [slot for _s, slot in scored[:limit]]


# Trade names at least this long may be two edits apart (matcher._trade_typo): trigrams.
_LONG_TRADE = 6
assert _LONG_TRADE - 2 >= _FUZZY_TRADE  # the shortest trade name candidates() searches


def _end_trims(text: str) -> set[str]:
    """The text without up to two characters taken from its ends, at least 3 long."""
    return {
        text[i : len(text) - j]
        for i in range(3)
        for j in range(3 - i)
        if i + j > 0 and len(text) - i - j >= 3
    }


def _edit_keys(
    kind: str, text: str, *, substitutions: bool
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Keys under which strings one edit apart meet, as (a probe's, a stored row's): the
    same string without the same position (a substitution, on both sides); a probe one
    character shorter than a stored string, or one longer (an insertion or deletion). Every
    key of a bucket is a true neighbour."""
    sub, ins, self_ = _EDIT_TAGS[kind]  # built once, not per key: this runs for every row
    deletions = [text[:i] + text[i + 1 :] for i in range(len(text))]
    shared: list[tuple[Any, ...]] = []
    if substitutions:
        n = len(text)
        shared = [(sub, n, i, d) for i, d in enumerate(deletions)]
    if len(text) < 3:  # deletions of one character are too short to be keys
        deletions = []
    probe = [*shared, (ins, text), *[(self_, d) for d in deletions]]
    stored = [*shared, *[(ins, d) for d in deletions], (self_, text)]
    return probe, stored


_EDIT_TAGS = {kind: (f"{kind}-sub", f"{kind}-ins", f"{kind}-self") for kind in ("trade", "core")}


class FileIndex:
    """Candidates among earlier rows of the file, found by what the matcher can match.

    Exact dictionaries cover the hard keys (credit code, phones, name key and its readings)
    and each soft name rule of crm.identity.matcher: the same trade name, core pinyin,
    trade-name pinyin, sound or characters; one edit between trade names or between whole
    cores (deletion neighbourhoods); two-character names one character apart in the same
    region and industry; one name contained in the other (end trims). Trigram indexes cover
    long trade names (two edits) and names in pinyin or English. Each bucket keeps its
    first 10 rows; the matcher then decides. tests/crm/test_importer.py checks that this
    finds what comparing with every row finds.
    """

    def __init__(self) -> None:
        self.entries: list[FileEntry] = []
        self._exact: dict[tuple[Any, ...], list[int]] = {}
        self._long = _TrigramIndex()  # trade names of _LONG_TRADE characters or more
        self._latin_pinyin = _TrigramIndex()  # trade-name pinyin of names written in latin
        self._all_pinyin = _TrigramIndex()  # trade-name pinyin of every name
        self.refs: dict[str, int] = {}  # external_ref -> row
        self.name_triples: dict[tuple[str, str, str], int] = {}  # -> slot
        self._last_keys: (
            tuple[IdentityKeys, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]] | None
        ) = None

    @staticmethod
    def _keys(keys: IdentityKeys) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The keys a probe looks up and the index keys of a stored row, computed together
        (most are shared; the insertion and containment neighbourhoods are asymmetric).
        Hard keys come first, so a bounded candidate list never loses a hard match."""
        name = keys.name
        found: list[tuple[Any, ...]] = []
        if keys.credit_code:
            found.append(("code", keys.credit_code))
        found += [("phone", number) for number in keys.phones]
        if name.name_key:
            found.append(("name", name.name_key))
        found += [("name", alt) for alt, _region in name.alternatives if alt]
        if keys.email_domain:
            found.append(("mail", keys.email_domain))
        if not name.has_identity:
            return found, found
        trade = name.trade_name
        found.append(("trade", trade))
        if name.pinyin_key:
            found.append(("core-pinyin", name.pinyin_key))
        if name.trade_pinyin:
            found.append(("pinyin", name.trade_pinyin))
        if name.sound_key and not name.is_latin:
            found.append(("sound", name.sound_key))
        found.append(("chars", "".join(sorted(trade))))
        if name.is_latin:
            return found, found
        probe, stored = found, list(found)
        # one edit between trade names (also 2 <-> 3 characters): deletion neighbourhoods
        if len(trade) >= 2:
            as_probe, as_stored = _edit_keys("trade", trade, substitutions=len(trade) >= 3)
            probe += as_probe
            stored += as_stored
        if len(trade) == 2 and name.region_code and name.industry:
            # two-character names one character apart, same region and industry
            slips = [("slip", name.region_code, name.industry, i, trade[1 - i]) for i in range(2)]
            probe += slips
            stored += slips
        # one edit between whole cores (the slip may cross into the industry word)
        if len(name.name_key) >= 5:
            as_probe, as_stored = _edit_keys("core", name.name_key, substitutions=True)
            probe += as_probe
            stored += as_stored
        if len(trade) >= 3:
            # contained in one another, at most two characters more
            trims = _end_trims(trade)
            probe += [("trade-self", t) for t in trims]
            probe.append(("within", trade))
            stored += [("within", t) for t in trims]
        return probe, stored

    def _keys_of(self, keys: IdentityKeys) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """_keys, kept for the row just looked up: `add` follows `candidates` for most rows."""
        last = self._last_keys
        if last is not None and last[0] is keys:
            return last[1]
        both = self._keys(keys)
        self._last_keys = (keys, both)
        return both

    def add(self, row: PreparedRow) -> FileEntry:
        assert row.keys is not None and row.copy_text
        entry = FileEntry(
            slot=len(self.entries),
            row=row.row,
            external_ref=row.external_ref,
            name=row.display_name,
            keys=row.keys,
            name_triple=row.name_triple,
        )
        self.entries.append(entry)
        exact = self._exact
        slot = entry.slot
        for key in self._keys_of(row.keys)[1]:
            # get, not setdefault(key, []): about 40 keys a row, most of them new
            bucket = exact.get(key)
            if bucket is None:
                exact[key] = [slot]
            elif len(bucket) < _BUCKET:
                bucket.append(slot)
        name = row.keys.name
        if len(name.trade_name) >= _LONG_TRADE and _fuzzy_search(row.keys):
            self._long.add(entry.slot, name.search_key)
        if len(name.trade_pinyin) >= 4:
            self._all_pinyin.add(entry.slot, name.trade_pinyin)
            if name.is_latin:
                self._latin_pinyin.add(entry.slot, name.trade_pinyin)
        if row.external_ref:
            self.refs[row.external_ref] = row.row
        triple = row.name_triple
        if triple is not None:
            self.name_triples.setdefault(triple, entry.slot)
        return entry

    def candidates(self, keys: IdentityKeys) -> list[FileEntry]:
        slots: list[int] = []
        for key in self._keys_of(keys)[0]:
            slots.extend(self._exact.get(key, ()))
        name = keys.name
        if len(name.trade_name) >= _LONG_TRADE - 2 and _fuzzy_search(keys):
            slots.extend(self._long.search(name.search_key, FUZZY_CANDIDATES))
        if len(name.trade_pinyin) >= 4:
            slots.extend(self._latin_pinyin.search(name.trade_pinyin, FUZZY_CANDIDATES))
            if name.is_latin:
                slots.extend(self._all_pinyin.search(name.trade_pinyin, FUZZY_CANDIDATES))
        entries = [self.entries[slot] for slot in dict.fromkeys(slots)]
        return [entry for entry in entries if entry.alive][: MAX_CANDIDATES + 10]

    def forget(self, entry: FileEntry) -> None:
        """A row that was not created after all (the database refused it)."""
        entry.alive = False
        if entry.external_ref and self.refs.get(entry.external_ref) == entry.row:
            del self.refs[entry.external_ref]
        triple = entry.name_triple
        if triple is not None and self.name_triples.get(triple) == entry.slot:
            del self.name_triples[triple]


# --------------------------------------------------------------------------------------------
# database candidates for a whole batch (the queries of crm.duplicates.candidate_ids)
# --------------------------------------------------------------------------------------------


@dataclass
class _DbCustomer:
    id: int
    name: str
    external_ref: str
    keys: IdentityKeys


# The "<> ''" (no ref or code looked up is empty) lets the planner use the partial unique
# indexes: it cannot infer it from a list of more than 100 values, and read the whole table
# instead (for the codes, 0.3 s a batch at a million customers; 24 ms with the index).
_REFS_SQL = (
    "SELECT external_ref FROM crm_customer WHERE external_ref = ANY(%s) AND external_ref <> ''"
)
_CODES_SQL = (
    "SELECT credit_code, id FROM crm_customer WHERE credit_code = ANY(%s) "
    "AND credit_code <> '' AND merged_into_id IS NULL AND id <= %s ORDER BY id"
)

# One query per kind of look-up for the whole batch: a LATERAL join runs the per-probe query
# of crm.duplicates for every probe text (each answered from the trigram index).
_SIMILAR_SQL = """
    SELECT q.i, c.id
    FROM unnest(%s::text[]) WITH ORDINALITY AS q(key, i)
    CROSS JOIN LATERAL (
        SELECT id FROM crm_customer
        WHERE {column} %% q.key AND merged_into_id IS NULL AND id <= %s
        ORDER BY similarity({column}, q.key) DESC
        LIMIT %s
    ) AS c
"""
_EQUAL_SQL = """
    SELECT q.i, c.id
    FROM unnest(%s::text[]) WITH ORDINALITY AS q(key, i)
    CROSS JOIN LATERAL (
        SELECT id FROM crm_customer
        WHERE {column} = q.key AND merged_into_id IS NULL AND id <= %s
        LIMIT %s
    ) AS c
"""

# The array look-ups (typos, spellings): each probe's keys travel as one joined string.
_LOOKUP_SEPARATOR = "\x1f"
_LOOKUP_SQL = """
    SELECT q.i, c.id
    FROM unnest(%s::text[]) WITH ORDINALITY AS q(keys, i)
    CROSS JOIN LATERAL (
        SELECT id FROM crm_customer
        WHERE {stored} && string_to_array(q.keys, %s)
            AND merged_into_id IS NULL AND id <= %s
        LIMIT %s
    ) AS c
"""

_LOOKUP_COLUMNS = (
    "credit_code",
    "name_key",
    "name_region",
    "branch",
    "search_key",
    "pinyin_key",
    "email_domain",
    "external_ref",
    "merged_into_id",
    "owner_id",
)


def refresh_statistics(*, after_load: bool = False) -> None:
    """Bring the planner's picture of the customer table up to date after bulk changes.

    Right after a bulk load the planner still believes the table is tiny and answers the
    trigram candidate query by filtering every row (seconds per batch instead of
    milliseconds): ANALYZE when much changed since autoanalyze last ran (it samples at most
    30,000 rows, about a second); after our own load, always. (The look-up GIN indexes write
    through, fastupdate off, so there is no pending list to merge.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
            "WHERE relname = 'crm_customer'"
        )
        row = cursor.fetchone()
        live, changed = (int(row[0]), int(row[1])) if row else (0, 0)
        if after_load or changed > max(1000, live // 10):
            # The table's size and the columns the candidate look-ups filter on: the whole
            # table's statistics (the look-up indexes' expressions above all) took four times
            # as long, and autovacuum analyzes the whole table soon after a load anyway.
            cursor.execute(f"ANALYZE crm_customer ({', '.join(_LOOKUP_COLUMNS)})")
            cursor.execute("ANALYZE crm_customerphone")


class DatabaseLookup:
    """Customers that existed when the import started (id <= max_id); rows the import itself
    creates are found through the FileIndex, so a dry run and the real run agree."""

    def __init__(self) -> None:
        refresh_statistics()
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM crm_customer")
            row = cursor.fetchone()
        self.max_id: int = int(row[0]) if row else 0
        self._keys: dict[int, _DbCustomer] = {}

    def batch(self, rows: Sequence[PreparedRow]) -> _BatchCandidates:
        found = _BatchCandidates()
        refs = sorted({r.external_ref for r in rows if r.external_ref})
        with connection.cursor() as cursor:
            if refs:
                cursor.execute(_REFS_SQL, [refs])
                found.refs = {ref for (ref,) in cursor.fetchall()}
            if not self.max_id:
                return found
            keyed = [r for r in rows if r.keys is not None]
            codes = sorted({r.keys.credit_code for r in keyed if r.keys and r.keys.credit_code})
            phones = sorted({p for r in keyed if r.keys for p in r.keys.phones})
            names = sorted(
                {
                    key
                    for r in keyed
                    if r.keys
                    for key in (r.keys.name.name_key, *(a for a, _ in r.keys.name.alternatives))
                    if key
                }
            )
            triples = sorted({t for r in keyed if (t := r.name_triple) is not None})
            if codes:
                cursor.execute(_CODES_SQL, [codes, self.max_id])
                for code, cid in cursor.fetchall():
                    found.by_code.setdefault(code, []).append(cid)
            if phones:
                cursor.execute(
                    "SELECT number, customer_id FROM crm_customerphone WHERE number = ANY(%s) "
                    "AND active AND customer_id <= %s ORDER BY customer_id",
                    [phones, self.max_id],
                )
                for number, cid in cursor.fetchall():
                    found.by_phone.setdefault(number, []).append(cid)
            if names:
                cursor.execute(
                    """
                    SELECT name_key, id FROM (
                        SELECT name_key, id,
                               row_number() OVER (PARTITION BY name_key ORDER BY id) AS n
                        FROM crm_customer
                        WHERE name_key = ANY(%s) AND merged_into_id IS NULL AND id <= %s
                    ) AS t WHERE n <= 10
                    """,
                    [names, self.max_id],
                )
                for key, cid in cursor.fetchall():
                    found.by_name.setdefault(key, []).append(cid)
            if triples:
                # The unique constraint customer_unique_name_key, asked before inserting.
                cursor.execute(
                    """
                    SELECT c.name_key, c.name_region, c.branch, c.id FROM crm_customer c
                    JOIN unnest(%s::text[], %s::text[], %s::text[]) AS t(k, r, b)
                      ON c.name_key = t.k AND c.name_region = t.r AND c.branch = t.b
                    WHERE c.merged_into_id IS NULL AND c.id <= %s
                    """,
                    [
                        [t[0] for t in triples],
                        [t[1] for t in triples],
                        [t[2] for t in triples],
                        self.max_id,
                    ],
                )
                for key, region, branch, cid in cursor.fetchall():
                    found.by_triple[(key, region, branch)] = cid
            self._fuzzy(cursor, rows, found)
        wanted: set[int] = set()
        for i, r in enumerate(rows):
            if r.keys is not None:
                ids = found.ids_for(i, r.keys)
                found.per_row[i] = ids
                wanted.update(ids)
        self._load(wanted - self._keys.keys())
        found.customers = {cid: self._keys[cid] for cid in wanted if cid in self._keys}
        return found

    def _fuzzy(self, cursor: Any, rows: Sequence[PreparedRow], found: _BatchCandidates) -> None:
        groups: dict[tuple[str, str, float | None], list[tuple[tuple[int, int], FuzzyProbe]]] = {}
        for i, row in enumerate(rows):
            if row.keys is None:
                continue
            probes = fuzzy_probes(row.keys)
            found.probe_counts[i] = len(probes)
            for j, probe in enumerate(probes):
                group = (probe.kind, probe.column, probe.threshold)
                groups.setdefault(group, []).append(((i, j), probe))
        for (kind, column, threshold), members in groups.items():
            assert column in {"search_key", "pinyin_key"}  # fixed names, never user input
            if kind in LOOKUP_SQL:
                cursor.execute(
                    _LOOKUP_SQL.format(stored=LOOKUP_SQL[kind]),
                    [
                        [_LOOKUP_SEPARATOR.join(p.lookup_keys) for _k, p in members],
                        _LOOKUP_SEPARATOR,
                        self.max_id,
                        FUZZY_CANDIDATES,
                    ],
                )
            elif kind == "equal":
                cursor.execute(
                    _EQUAL_SQL.format(column=column),
                    [[p.text for _k, p in members], self.max_id, FUZZY_CANDIDATES],
                )
            else:
                cursor.execute("SELECT set_limit(%s)", [threshold])
                cursor.execute(
                    _SIMILAR_SQL.format(column=column),
                    [[p.text for _k, p in members], self.max_id, FUZZY_CANDIDATES],
                )
            for ordinal, cid in cursor.fetchall():
                found.fuzzy.setdefault(members[ordinal - 1][0], []).append(cid)

    def _load(self, ids: set[int]) -> None:
        if not ids:
            return
        phones: dict[int, list[str]] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT customer_id, number FROM crm_customerphone WHERE customer_id = ANY(%s) "
                "ORDER BY id",
                [sorted(ids)],
            )
            for cid, number in cursor.fetchall():
                phones.setdefault(cid, []).append(number)
            cursor.execute(
                "SELECT id, display_name, credit_code, external_ref, name_parts, email_domain "
                "FROM crm_customer WHERE id = ANY(%s)",
                [sorted(ids)],
            )
            for cid, name, code, ref, parts, domain in cursor.fetchall():
                # The stored customer's keys exactly as crm.duplicates.customer_keys builds them.
                keys = import_keys(
                    stored_keys(
                        name,
                        parts,
                        credit_code=code,
                        phones=phones.get(cid, []),
                        email_domain=domain,
                    )
                )
                self._keys[cid] = _DbCustomer(id=cid, name=name, external_ref=ref, keys=keys)


@dataclass
class _BatchCandidates:
    refs: set[str] = field(default_factory=set)
    by_code: dict[str, list[int]] = field(default_factory=dict)
    by_phone: dict[str, list[int]] = field(default_factory=dict)
    by_name: dict[str, list[int]] = field(default_factory=dict)
    by_triple: dict[tuple[str, str, str], int] = field(default_factory=dict)
    fuzzy: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (row, probe)
    probe_counts: dict[int, int] = field(default_factory=dict)
    per_row: dict[int, list[int]] = field(default_factory=dict)
    customers: dict[int, _DbCustomer] = field(default_factory=dict)

    def ids_for(self, index: int, keys: IdentityKeys) -> list[int]:
        """The same candidates, in the same order and bounds, as candidate_ids()."""
        ids: list[int] = []
        if keys.credit_code:
            ids += self.by_code.get(keys.credit_code, [])[:5]
        if keys.phones:
            ids += [cid for number in keys.phones for cid in self.by_phone.get(number, [])][:10]
        name = keys.name
        name_keys = dict.fromkeys(
            k for k in (name.name_key, *(alt for alt, _region in name.alternatives)) if k
        )
        ids += [cid for key in name_keys for cid in self.by_name.get(key, [])][:10]
        for probe in range(self.probe_counts.get(index, 0)):
            ids += self.fuzzy.get((index, probe), [])
        return list(dict.fromkeys(ids))[:MAX_CANDIDATES]


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass
class MatchResult:
    tier: str
    score: float
    reasons: list[str]
    customer_id: int | None  # None: an earlier row of the file
    external_ref: str
    name: str
    row: int | None = None  # the earlier row's number, for in-file matches
    entry: FileEntry | None = None

    def candidate_pk(self) -> int:
        """The stored customer this match points at (an in-file match: the customer its
        earlier row became, created before this one)."""
        if self.entry is None:
            assert self.customer_id is not None
            return self.customer_id
        assert self.entry.customer_id is not None
        return self.entry.customer_id

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "external_ref": self.external_ref,
            "tier": self.tier,
            "score": self.score,
            "reasons": self.reasons,
            "name": self.name,
            "row": self.row,
        }


@dataclass
class RowResult:
    row: int
    external_ref: str
    raw: dict[str, str]
    status: str = STATUS_NEW
    matches: list[MatchResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    customer_id: int | None = None  # the customer created from this row

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "external_ref": self.external_ref,
            "status": self.status,
            "matches": [m.as_dict() for m in self.matches],
            "errors": [{"field": f, "message": m} for f, m in self.errors.items()],
            "warnings": self.warnings,
            "customer_id": self.customer_id,
        }

    def problem_text(self) -> str:
        """One line for people: the errors, or the matches with their reasons."""
        parts = [f"{message}" for message in self.errors.values()]
        for match in self.matches:
            if match.customer_id is not None:
                who = _("customer #%(id)s %(name)s") % {"id": match.customer_id, "name": match.name}
            else:
                who = _("row %(row)s %(name)s") % {"row": match.row, "name": match.name}
            tier = _("same company") if match.tier == "hard" else _("similar")
            parts.append(f"{who}（{tier}：{'，'.join(match.reasons)}）")
        parts.extend(self.warnings)
        return "；".join(parts)


_PHASES = ("prepare", "lookup", "match", "write", "finish")


@dataclass
class ImportReport:
    name: str
    total: int
    dry_run: bool
    strict: bool
    rows: list[RowResult] = field(default_factory=list)
    created: int = 0
    flagged: int = 0
    assigned: int = 0  # given to the chosen owner
    left_in_pool: int = 0  # refused by the ownership rules (holding cap ...)
    aborted: bool = False  # strict: a problem row stopped the import; nothing was written
    # seconds per phase of the main process (for benchmarks): waiting for prepared rows,
    # database candidate queries, matching, writing
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_PHASES, 0.0))

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            counts[row.status] += 1
        counts["created"] = self.created
        counts["flagged"] = self.flagged
        counts["assigned"] = self.assigned
        counts["left_in_pool"] = self.left_in_pool
        counts["warnings"] = sum(1 for row in self.rows if row.warnings)
        counts["total"] = self.total
        return counts

    @property
    def problems(self) -> list[RowResult]:
        return [row for row in self.rows if row.status in PROBLEM_STATUSES or row.warnings]

    @property
    def strict_failures(self) -> int:
        return sum(1 for row in self.rows if row.status in (STATUS_INVALID, STATUS_DUPLICATE))


class _StrictAbort(Exception):
    """Rolls back a strict import."""


# --------------------------------------------------------------------------------------------
# the import
# --------------------------------------------------------------------------------------------


def _db_match(match: Match, customer: _DbCustomer) -> MatchResult:
    return MatchResult(
        tier=match.tier,
        score=round(match.score, 3),
        reasons=match.reason_texts(),
        customer_id=customer.id,
        external_ref=customer.external_ref,
        name=customer.name,
    )


def _file_match(match: Match, entry: FileEntry) -> MatchResult:
    return MatchResult(
        tier=match.tier,
        score=round(match.score, 3),
        reasons=match.reason_texts(),
        customer_id=None,
        external_ref=entry.external_ref,
        name=entry.name,
        row=entry.row,
        entry=entry,
    )


_Creation = list[tuple["PreparedRow", "RowResult", "FileEntry"]]


class _BackgroundWriter:
    """Writes batches in a thread of its own (own database connection, one transaction per
    batch, as before), at most two batches behind the checks. The first error stops the
    import: it is raised in the importing thread at its next hand-over or at the end, and the
    batches still queued are dropped."""

    def __init__(self, write: Callable[[_Creation], None]) -> None:
        self._write = write
        self._queue: queue.Queue[_Creation | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._language = translation.get_language()
        self._thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with translation.override(self._language):
                while (batch := self._queue.get()) is not None:
                    if self._error is None:
                        try:
                            self._write(batch)
                        except BaseException as error:  # noqa: BLE001 - re-raised by the importer
                            self._error = error
        finally:
            connection.close()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, batch: _Creation) -> None:
        self._raise()
        self._queue.put(batch)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()


class CustomerImporter:
    """One run over a table; see the module docstring."""

    def __init__(
        self,
        table: ImportTable,
        *,
        actor: User | None,
        owner: User | None = None,
        dry_run: bool = False,
        strict: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        cause: models.Model | None = None,
    ) -> None:
        if owner is not None:
            check_owner(owner)
        self.cause = cause
        self.table = table
        self.actor = actor
        self.assign_to = owner
        self.dry_run = dry_run
        self.strict = strict
        self.batch_size = max(1, batch_size)
        self.workers = default_workers(table.total) if workers is None else workers
        self.progress = progress
        self.index = FileIndex()
        self.report = ImportReport(
            name=table.name, total=table.total, dry_run=dry_run, strict=strict
        )
        self._writing = not dry_run
        self._writer: _BackgroundWriter | None = None

    def run(self) -> ImportReport:
        ctx = PrepareContext(
            actor_id=self.actor.pk if self.actor else None,
            industries=_industry_table(),
            language=translation.get_language() or settings.LANGUAGE_CODE,
        )
        self.lookup = DatabaseLookup()
        rows = _prepared(self.table.rows, ctx, self.workers)
        if self.strict and not self.dry_run:
            try:
                with transaction.atomic():
                    self._loop(rows)
                    if self.report.strict_failures:
                        raise _StrictAbort
            except _StrictAbort:
                self._rolled_back()
            except IntegrityError:
                # A concurrent registration took a key between our check and our insert.
                self._rolled_back()
                raise ImportFileError(
                    _(
                        "Another user registered one of these customers during the import; "
                        "nothing was imported. Run the import again."
                    )
                ) from None
        elif self._writing and not connection.in_atomic_block:
            self._writer = _BackgroundWriter(self._write)
            try:
                self._loop(rows)
            finally:
                finishing = time.perf_counter()
                writer, self._writer = self._writer, None
                writer.close()
                self.report.timings["finish"] += time.perf_counter() - finishing
        else:
            self._loop(rows)
        finishing = time.perf_counter()
        if self.report.created >= 1000:
            refresh_statistics(after_load=True)
        created = [row.customer_id for row in self.report.rows if row.customer_id]
        if created:
            # Territories and whatever else follows a new customer, once for the whole file
            # (set-based: about a second per 100,000 customers).
            signals.customers_created.send(sender=Customer, customer_ids=created)
        self.report.timings["finish"] += time.perf_counter() - finishing
        return self.report

    def _rolled_back(self) -> None:
        self.report.aborted = True
        self.report.created = self.report.flagged = 0
        self.report.assigned = self.report.left_in_pool = 0
        for row in self.report.rows:
            row.customer_id = None

    def _loop(self, rows: Iterator[PreparedRow]) -> None:
        done = 0
        timings = self.report.timings
        # Python's cycle collector walks every container object now and then; the file index
        # and the report grow by millions of them, which had made the walks a third of the
        # matching time (more the longer the file). What each batch built goes into the
        # collector's permanent generation (gc.freeze), so only new objects are walked; at
        # the end everything is handed back, to be collected as usual.
        # Within a batch, what it builds survives until its end, and full collections came
        # every hundred young ones (the frozen objects do not count as long-lived), each
        # walking all the batch had built so far: half the collector's time in an import.
        # Young collections still reclaim short-lived cycles.
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], _FULL_COLLECTIONS_AFTER))
        try:
            while True:
                started = time.perf_counter()
                batch = list(islice(rows, self.batch_size))
                timings["prepare"] += time.perf_counter() - started
                if not batch:
                    break
                self._batch(batch)
                done += len(batch)
                gc.freeze()
                if self.progress is not None:
                    self.progress(done, self.table.total)
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)

    def _batch(self, batch: list[PreparedRow]) -> None:
        timings = self.report.timings
        started = time.perf_counter()
        found = self.lookup.batch(batch)
        matched = time.perf_counter()
        timings["lookup"] += matched - started
        results: list[RowResult] = []
        to_create: list[tuple[PreparedRow, RowResult, FileEntry]] = []
        for i, row in enumerate(batch):
            result = RowResult(
                row=row.row,
                external_ref=row.external_ref,
                raw=row.raw,
                errors=dict(row.errors),
                warnings=list(row.warnings),
            )
            results.append(result)
            if row.external_ref and (
                row.external_ref in found.refs or row.external_ref in self.index.refs
            ):
                earlier = self.index.refs.get(row.external_ref)
                result.errors["external_ref"] = (
                    _("The external reference %(ref)s is already used.") % {"ref": row.external_ref}
                    if earlier is None
                    else _("The external reference %(ref)s is already used in row %(row)s.")
                    % {"ref": row.external_ref, "row": earlier}
                )
            if row.keys is not None:
                result.matches = self._matches(i, row, found)
            if result.errors:
                result.status = STATUS_INVALID
            elif any(m.tier == "hard" for m in result.matches):
                result.status = STATUS_DUPLICATE
            elif result.matches:
                result.status = STATUS_POSSIBLE
            else:
                result.status = STATUS_NEW
            if result.status in (STATUS_NEW, STATUS_POSSIBLE):
                to_create.append((row, result, self.index.add(row)))
        self.report.rows.extend(results)
        if self.strict and self.report.strict_failures:
            self._writing = False  # a strict import is rolled back at the end anyway
        written = time.perf_counter()
        timings["match"] += written - matched
        if self._writing and to_create:
            if self._writer is not None:
                self._writer.submit(to_create)
            else:
                self._write(to_create)
        timings["write"] += time.perf_counter() - written

    def _matches(self, index: int, row: PreparedRow, found: _BatchCandidates) -> list[MatchResult]:
        assert row.keys is not None
        db_ids = found.per_row.get(index, [])
        candidates: list[tuple[tuple[str, int], IdentityKeys]] = [
            (("db", cid), found.customers[cid].keys) for cid in db_ids if cid in found.customers
        ]
        file_entries = {entry.slot: entry for entry in self.index.candidates(row.keys)}
        candidates += [(("file", slot), entry.keys) for slot, entry in file_entries.items()]
        ranked = rank(row.keys, candidates, limit=10)
        db_hard = any(m.is_hard for (kind, _id), m in ranked if kind == "db")
        results: list[MatchResult] = []
        for (kind, ident), match in ranked:
            if kind == "db":
                results.append(_db_match(match, found.customers[ident]))
            elif not db_hard:
                results.append(_file_match(match, file_entries[ident]))
        if not any(m.tier == "hard" for m in results):
            self._name_constraint(row, found, results)
        return results

    def _name_constraint(
        self, row: PreparedRow, found: _BatchCandidates, results: list[MatchResult]
    ) -> None:
        """The database keeps one customer per (name key, name region, branch). The matcher
        calls two such records only similar when their credit codes differ; the insert would
        fail, so the row is answered as a duplicate of the record that holds the name."""
        triple = row.name_triple
        if triple is None:
            return
        reason = gettext_lazy(
            "Same name in the same region: only one such customer can be recorded."
        )
        cid = found.by_triple.get(triple)
        if cid is not None:
            for match in results:
                if match.customer_id == cid:
                    match.tier = "hard"
                    match.reasons.append(str(reason))
                    return
            customer = self.lookup._keys.get(cid)
            if customer is None:
                self.lookup._load({cid})
                customer = self.lookup._keys[cid]
            results.insert(0, _db_match(Match(tier="hard", score=0.96, reasons=[reason]), customer))
            return
        slot = self.index.name_triples.get(triple)
        if slot is None:
            return
        entry = self.index.entries[slot]
        for match in results:
            if match.entry is entry:
                match.tier = "hard"
                match.reasons.append(str(reason))
                return
        results.insert(0, _file_match(Match(tier="hard", score=0.96, reasons=[reason]), entry))

    def _write(self, to_create: _Creation) -> None:
        try:
            with transaction.atomic():
                ids = insert_customers(
                    [(row, result.status == STATUS_POSSIBLE) for row, result, _entry in to_create]
                )
                # Before the possible-duplicate records: they may point at rows of this batch.
                for (_row, _result, entry), cid in zip(to_create, ids, strict=True):
                    entry.customer_id = cid
                insert_rows(
                    CustomerPhone,
                    [
                        {
                            "customer_id": cid,
                            "number": number,
                            "is_mobile": (
                                number in row.keys.mobiles if row.keys else is_mobile(number)
                            ),
                            "active": True,
                        }
                        for (row, _result, _entry), cid in zip(to_create, ids, strict=True)
                        for number in dict.fromkeys(row.phones)
                    ],
                )
                insert_rows(
                    PossibleDuplicateRecord,
                    [
                        {
                            "customer_id": cid,
                            "candidate_id": match.candidate_pk(),
                            "score": match.score,
                            "reasons": match.reasons,
                        }
                        for (_row, result, _entry), cid in zip(to_create, ids, strict=True)
                        for match in result.matches
                    ],
                )
        except IntegrityError:
            if self.strict:
                raise
            logger.info("import batch hit a unique constraint; redoing it row by row")
            for _row, _result, entry in to_create:
                entry.customer_id = None
            self._write_one_by_one(to_create)
            return
        # The ownership writer is given the stored customers (one query for the batch).
        owned = Customer.objects.in_bulk(ids) if self.assign_to is not None else {}
        for (_row, result, _entry), cid in zip(to_create, ids, strict=True):
            result.customer_id = cid
            self.report.created += 1
            self.report.flagged += int(result.status == STATUS_POSSIBLE)
            if self.assign_to is not None:
                self._assign_owner(owned[cid], result)

    def _write_one_by_one(self, to_create: list[tuple[PreparedRow, RowResult, FileEntry]]) -> None:
        """The slow, safe path: the service decides, row by row (collisions become answers)."""
        for row, result, entry in to_create:
            raw = row.raw
            industry_id = row.industry_id
            try:
                customer = services.customer_create(
                    actor=self.actor,
                    display_name=raw.get("name", ""),
                    credit_code=raw.get("credit_code", ""),
                    address=raw.get("address", ""),
                    province=raw.get("province", ""),
                    city=raw.get("city", ""),
                    phone=raw.get("phone", ""),
                    industry=Industry.objects.get(pk=industry_id) if industry_id else None,
                    source=Source.IMPORT,
                    external_ref=row.external_ref,
                    allow_possible_duplicates=True,
                )
            except services.DuplicateCustomer as error:
                self.index.forget(entry)
                result.status = STATUS_DUPLICATE
                result.matches = [
                    MatchResult(
                        tier=m.tier,
                        score=m.score,
                        reasons=list(m.reasons),
                        customer_id=m.customer.pk,
                        external_ref=m.customer.external_ref,
                        name=m.customer.display_name,
                    )
                    for m in error.matches
                ]
                continue
            except services.CustomerInvalid as error:
                self.index.forget(entry)
                result.status = STATUS_INVALID
                result.errors.update(error.errors)
                continue
            except IntegrityError:
                self.index.forget(entry)
                result.status = STATUS_INVALID
                result.errors["name"] = _(
                    "The database refused this customer as a duplicate of an existing one."
                )
                continue
            entry.customer_id = customer.pk
            result.customer_id = customer.pk
            self.report.created += 1
            if customer.needs_duplicate_review:
                self.report.flagged += 1
            self._assign_owner(customer, result)

    def _assign_owner(self, customer: Customer, result: RowResult) -> None:
        """Hand a new customer to the chosen rep through the one writer of ownership (a
        ledger event, the rep's holding cap); a refusal leaves it in the pool, with a note."""
        if self.assign_to is None:
            return
        try:
            with transaction.atomic():
                owner_service()(
                    actor=self.actor,
                    customer=customer,
                    to_rep=self.assign_to,
                    reason=_("Imported from %(file)s") % {"file": self.table.name},
                    cause=self.cause,
                )
        except DomainError as error:
            result.warnings.append(
                _("Left in the public pool: %(reason)s") % {"reason": error.message}
            )
            self.report.left_in_pool += 1
        else:
            self.report.assigned += 1


def _copy_text(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return (
                value.replace("\\", "\\\\")
                .replace("\t", "\\t")
                .replace("\n", "\\n")
                .replace("\r", "\\r")
            )
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    raise TypeError(f"no COPY form for {type(value).__name__}")


def _json_copy_text(encoder: type[json.JSONEncoder] | None) -> Callable[[Any], str]:
    # Not ASCII-escaped as the field's own encoding is: the stored jsonb is the same, and the
    # text has no backslash to escape again for COPY unless a value holds one. One encoder
    # for every value: json.dumps with options builds a new one each call (40% of its time).
    dumps = (encoder or json.JSONEncoder)(ensure_ascii=False).encode

    def encode(value: Any) -> str:
        return _copy_text(None if value is None else dumps(value))

    return encode


def _stamped(f: models.Field[Any, Any]) -> bool:
    return bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))


def _copy_encoder(f: models.Field[Any, Any]) -> Callable[[Any], str]:
    if isinstance(f, models.JSONField):
        return _json_copy_text(f.encoder)
    return _copy_text


def _copy(meta: Any, columns: Sequence[str], encoded: Sequence[str]) -> list[int]:
    """COPY rows into meta's table: `encoded`, each row's columns after the primary key in
    COPY's text format, with the ids drawn for them first from the table's sequence."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(encoded)],
        )
        ids = [int(r[0]) for r in cursor.fetchall()]
        text = io.StringIO(
            "".join(f"{pk}\t{values}\n" for pk, values in zip(ids, encoded, strict=True))
        )
        with connection.wrap_database_errors:  # IntegrityError, as from an INSERT
            cursor.copy_expert(
                f"COPY {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN",
                text,
            )
    return ids


def insert_instances(objects: Sequence[models.Model]) -> None:
    """Store unsaved instances of one model with COPY and set their ids.

    What bulk_create does, without its per-value compilation (a third of an import's time
    with 35 customer columns), and with COPY instead of a many-row INSERT, which PostgreSQL
    parses value by value: the ids are drawn from the table's sequence first. auto_now(_add)
    fields get the time; JSON fields are written as JSON text without ASCII escapes (the
    stored jsonb is what the field itself would store).
    """
    if not objects:
        return
    model = type(objects[0])
    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    for obj in objects:
        for f in fields:
            if _stamped(f):
                setattr(obj, f.attname, now)
    ids = _insert_values(
        model, [{f.attname: getattr(obj, f.attname) for f in fields} for obj in objects], now
    )
    for obj, pk_value in zip(objects, ids, strict=True):
        obj.pk = pk_value
        obj._state.adding = False
        obj._state.db = connection.alias


def insert_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Store rows of one model, each given as {attname: value}, as insert_instances stores
    instances (fields not given get their defaults); returns their ids, in order.

    For the import's phones and possible-duplicate records: building a model instance for
    each cost more than encoding and sending its row."""
    if not rows:
        return []
    return _insert_values(model, rows, timezone.now())


def _insert_values(
    model: type[models.Model], rows: Sequence[Mapping[str, Any]], now: datetime.datetime
) -> list[int]:
    meta = model._meta
    assert meta.pk is not None
    stamp = _copy_text(now)
    layout = [
        (f.attname, _stamped(f), _copy_encoder(f), f)
        for f in meta.concrete_fields
        if not f.primary_key
    ]
    encoded = []
    for row in rows:
        parts = []
        for attname, stamped, encode, f in layout:
            if stamped:
                parts.append(stamp)
            elif attname in row:
                parts.append(encode(row[attname]))
            else:
                parts.append(encode(f.get_default()))
        encoded.append("\t".join(parts))
    return _copy(meta, [meta.pk.column, *(f.column for _a, _s, _e, f in layout)], encoded)


def insert_customers(rows: Sequence[tuple[PreparedRow, bool]]) -> list[int]:
    """Store the customers of prepared rows (each with its review flag) with COPY, as
    insert_instances stores Customer instances; returns their ids, in order.

    The columns were encoded by prepare_row (in the workers, for large files): only the
    review flag and the time stamps (one for the batch) are added here."""
    if not rows:
        return []
    stamp = _copy_text(timezone.now())
    flags = {True: f"t\t{stamp}\t{stamp}\t", False: f"f\t{stamp}\t{stamp}\t"}
    encoded = []
    for row, review in rows:
        assert row.copy_text
        encoded.append(flags[review] + row.copy_text)
    return _copy(Customer._meta, _customer_copy().columns, encoded)


def _industry_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for pk, name, code in Industry.objects.values_list("id", "name", "code"):
        table.setdefault(_industry_key(code), pk)
        table[_industry_key(name)] = pk
    return table


def owner_service() -> Callable[..., Any]:
    """The ownership writer that gives a pool customer to a rep.

    crm does not import the ownership app (dependencies point one way); the composition
    root names the service: settings.IMPORT_OWNER_SERVICE, a dotted path to a function
    called as f(actor=, customer=, to_rep=, reason=, cause=).
    """
    return import_string(
        getattr(settings, "IMPORT_OWNER_SERVICE", "ownership.services.ownership_allocate")
    )


def check_owner(owner: User) -> None:
    """Imported customers may only belong to an active sales rep (never a departing one)."""
    if not owner.is_active or owner.state != EmploymentState.ACTIVE or owner.role != Role.REP:
        raise ImportFileError(
            _("%(user)s cannot own customers: only active sales reps can.") % {"user": owner}
        )


def owner_by_username(username: str) -> User:
    try:
        owner = User.objects.get(username=username)
    except User.DoesNotExist:
        raise ImportFileError(
            _("There is no user with the username “%(username)s”.") % {"username": username}
        ) from None
    check_owner(owner)
    return owner


def import_customers(
    table: ImportTable,
    *,
    actor: User | None,
    owner: User | None = None,
    dry_run: bool = False,
    strict: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cause: models.Model | None = None,
) -> ImportReport:
    """Check (and unless `dry_run`, import) every row of `table`; see the module docstring.

    New customers start in the public pool; with `owner` each is then handed to that rep
    through the ownership writer (settings.IMPORT_OWNER_SERVICE), `cause` recorded."""
    return CustomerImporter(
        table,
        actor=actor,
        owner=owner,
        dry_run=dry_run,
        strict=strict,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        cause=cause,
    ).run()


# --------------------------------------------------------------------------------------------
# reports: JSON lines (kept with the job) and the CSV for Excel
# --------------------------------------------------------------------------------------------

ERROR_CSV_COLUMNS = (
    ("row", "行号"),
    ("status", "状态"),
    ("problem", "问题"),
    ("external_ref", "外部编号"),
    ("name", "名称"),
    ("credit_code", "统一社会信用代码"),
    ("province", "省"),
    ("city", "市"),
    ("address", "地址"),
    ("phone", "电话"),
    ("industry", "行业"),
)
_FORMULA_START = ("=", "@", "\t", "\r")


def _safe_cell(value: str) -> str:
    """Keep Excel from running a cell as a formula (CSV injection); phone numbers such as
    +8613800138000 stay as they are."""
    if value.startswith(_FORMULA_START) or (
        value[:1] in "+-" and not re.fullmatch(r"[+\-][\d\s\-()]*", value)
    ):
        return "'" + value
    return value


def report_lines(report: ImportReport) -> Iterator[str]:
    """The problem rows as JSON lines, with the row's original values for the CSV."""
    for row in report.problems:
        data = row.as_dict()
        data["raw"] = row.raw
        data["problem"] = row.problem_text()
        yield json.dumps(data, ensure_ascii=False)


def error_csv(
    lines: Iterable[str], statuses: Iterable[str] = (STATUS_INVALID, STATUS_DUPLICATE)
) -> bytes:
    """The rows not imported, as CSV in UTF-8 with a BOM (so Excel shows the Chinese).

    The columns carry the import's own Chinese names: fix the rows and import the file again
    (行号, 状态 and 问题 are ignored then)."""
    wanted = set(statuses)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([title for _key, title in ERROR_CSV_COLUMNS])
    for line in lines:
        data = json.loads(line)
        if data["status"] not in wanted:
            continue
        raw = data.get("raw", {})
        values = {
            "row": str(data["row"]),
            "status": status_label(data["status"]),
            "problem": data.get("problem", ""),
            **{key: raw.get(key, "") for key in FIELDS},
        }
        writer.writerow([_safe_cell(values[key]) for key, _title in ERROR_CSV_COLUMNS])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


class ReportRows(Sequence[dict[str, Any]]):
    """The problem rows of a stored report, lazily: a page decodes only its own lines."""

    def __init__(self, job: ImportJob, length: int) -> None:
        self.job = job
        self.length = length

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, item: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, item: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, item: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(item, int):
            return self[item : item + 1][0]
        start, stop, _step = item.indices(self.length)
        if not self.job.report:
            return []
        with self.job.report.open("rb") as handle:
            lines = islice(io.TextIOWrapper(handle, encoding="utf-8"), start, stop)
            return [json.loads(line) for line in lines]


def report_text_lines(job: ImportJob) -> Iterator[str]:
    if not job.report:
        return
    with job.report.open("rb") as handle:
        yield from io.TextIOWrapper(handle, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# import jobs (the web page): services and permission-scoped reads
# --------------------------------------------------------------------------------------------


def import_owner_choices(user: User) -> QuerySet[User]:
    """Reps a user may import customers for: an administrator any active rep, a manager the
    active reps of the teams they manage."""
    reps = User.objects.filter(
        role=Role.REP, is_active=True, state=EmploymentState.ACTIVE
    ).order_by("display_name", "username")
    if user.is_crm_admin:
        return reps
    if user.is_manager:
        return reps.filter(team__in=teams_managed_by(user))
    return reps.none()


def import_jobs_for(user: User) -> QuerySet[ImportJob]:
    """A user's own import jobs (administrators see everyone's)."""
    jobs = ImportJob.objects.select_related("created_by", "owner").order_by("-created_at", "-id")
    if user.is_crm_admin:
        return jobs
    if user.is_manager:
        return jobs.filter(created_by=user)
    return jobs.none()


def import_job_create(*, actor: User, file: File[Any], name: str, owner: User | None) -> ImportJob:
    """Store the upload and enqueue its preview (dry run) once the row is committed."""
    from crm.tasks import run_import_job

    if owner is not None:
        check_owner(owner)
        if not import_owner_choices(actor).filter(pk=owner.pk).exists():
            raise ImportFileError(_("You cannot import customers for this rep."))
    table = read_table_from_file(file, name)  # refuse bad files before storing them
    with transaction.atomic():
        job = ImportJob(
            created_by=actor,
            original_name=name[:255],
            owner=owner,
            dry_run=True,
            total_rows=table.total,
        )
        job.file.save(Path(name).name, file, save=False)
        job.save()
        transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


def import_job_confirm(*, actor: User, job: ImportJob) -> ImportJob:
    """Turn a finished preview into the real import (enqueued after commit)."""
    from crm.tasks import run_import_job

    if job.created_by_id != actor.pk and not actor.is_crm_admin:
        raise ImportFileError(_("Only the person who uploaded the file can import it."))
    with transaction.atomic():
        claimed = ImportJob.objects.filter(
            pk=job.pk, dry_run=True, status=ImportStatus.DONE
        ).update(dry_run=False, status=ImportStatus.PENDING, processed_rows=0, finished_at=None)
        if claimed != 1:
            raise ImportFileError(_("This file has already been imported, or is not ready yet."))
        transaction.on_commit(lambda: run_import_job.delay(job.pk))
    job.refresh_from_db()
    return job


def import_job_run(*, job_id: int) -> None:
    """Run a pending job (preview or import). Idempotent: only a pending job is claimed."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.PENDING).update(
        status=ImportStatus.RUNNING, processed_rows=0, error=""
    )
    if claimed != 1:
        return
    job = ImportJob.objects.select_related("created_by", "owner").get(pk=job_id)
    language = job.created_by.language or settings.LANGUAGE_CODE

    def progress(done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(processed_rows=done, total_rows=total)

    with translation.override(language):
        try:
            with job.file.open("rb") as handle:
                table = read_table_from_file(handle, job.original_name)
            ImportJob.objects.filter(pk=job_id).update(total_rows=table.total)
            report = import_customers(
                table,
                actor=job.created_by,
                owner=job.owner,
                dry_run=job.dry_run,
                workers=1,
                progress=progress,
                cause=job,
            )
        except DomainError as error:
            _fail(job_id, error.message)
            return
        except Exception:
            logger.exception("import job %s failed", job_id)
            _fail(
                job_id,
                _("The import failed because of an internal error; nothing more was written."),
            )
            raise
    content = ContentFile("".join(line + "\n" for line in report_lines(report)).encode("utf-8"))
    if job.report:
        job.report.delete(save=False)  # the preview's report, replaced by the import's
    job.report.save(f"job-{job_id}.jsonl", content, save=False)
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.DONE,
        processed_rows=report.total,
        total_rows=report.total,
        counts={**report.counts, "problems": len(report.problems)},
        report=job.report.name,
        finished_at=timezone.now(),
    )


def _fail(job_id: int, message: str) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.FAILED, error=str(message), finished_at=timezone.now()
    )


__all__ = [
    "ImportFileError",
    "ImportReport",
    "ImportTable",
    "import_customers",
    "read_table",
    "read_table_from_path",
]
