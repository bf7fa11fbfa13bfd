"""Model instances read by a statement written once per process.

Building an ORM query (filters, joins, the compiled SQL) costs several times what running a
primary-key look-up does (and planning it, on the server, about as much again: the
statements are prepared, crm.prepared). The few reads that every request or every registration makes
(the signed-in user, the customers a duplicate check matched) go through ``RowLoader``
instead: the SQL is composed once from the model's metadata, and each row becomes an
instance the way the ORM builds one (``Model.from_db``, the fields' database converters,
related objects cached as ``select_related`` caches them), so callers see no difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import ForeignKey, Model, signals

from crm import prepared

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Part:
    """One model of the statement: its columns' place in the row and where it hangs."""

    model: type[Model]
    alias: str
    attnames: tuple[str, ...]
    start: int
    converters: tuple[tuple[int, Callable[..., Any], Any], ...]  # (column, converter, Col)
    parent: int | None  # index of the part whose foreign key leads here
    field: ForeignKey[Any, Any] | None  # that foreign key


class RowLoader(Generic[M]):
    """Instances of `model` by primary key, with the foreign keys in `related` followed (as
    in ``select_related``: "owner", "owner__team") and the SQL expressions over the model's
    table (alias ``t0``) in `extra` set as attributes (as ``annotate`` sets them)."""

    def __init__(
        self, model: type[M], related: Sequence[str] = (), extra: Mapping[str, str] | None = None
    ) -> None:
        self.model = model
        self.related = tuple(related)
        self.extra = dict(extra or {})
        self._sql: dict[str, tuple[str, tuple[_Part, ...]]] = {}

    def _compose(self, alias: str) -> tuple[str, tuple[_Part, ...]]:
        connection = connections[alias]
        quote = connection.ops.quote_name
        parts: list[_Part] = []
        joins: list[str] = []
        columns: list[str] = []
        by_path: dict[str, int] = {}

        def add(model: type[Model], parent: int | None, field: Any) -> int:
            table_alias = f"t{len(parts)}"
            fields = model._meta.concrete_fields
            converters: list[tuple[int, Callable[..., Any], Any]] = []
            for index, model_field in enumerate(fields):
                column = model_field.get_col(table_alias)
                found = connection.ops.get_db_converters(column) + column.get_db_converters(
                    connection
                )
                converters.extend((index, converter, column) for converter in found)
            parts.append(
                _Part(
                    model=model,
                    alias=table_alias,
                    attnames=tuple(f.attname for f in fields),
                    start=len(columns),
                    converters=tuple(converters),
                    parent=parent,
                    field=field,
                )
            )
            columns.extend(f"{table_alias}.{quote(f.column)}" for f in fields)
            return len(parts) - 1

        add(self.model, None, None)
        for path in self.related:
            head, _, name = path.rpartition("__")
            parent = by_path[head] if head else 0
            field = parts[parent].model._meta.get_field(name)
            if not isinstance(field, ForeignKey):
                raise ValueError(f"{path} is not a foreign key")
            target = field.related_model
            assert isinstance(target, type)
            index = add(target, parent, field)
            by_path[path] = index
            joins.append(
                f"LEFT OUTER JOIN {quote(target._meta.db_table)} {parts[index].alias} ON "
                f"{parts[index].alias}.{quote(field.target_field.column)} = "
                f"{parts[parent].alias}.{quote(field.column)}"
            )
        columns.extend(f"({expression})" for expression in self.extra.values())
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(self.model._meta.db_table)} t0 "
            f"{' '.join(joins)}"
        )
        return sql, tuple(parts)

    def _statement(self, alias: str) -> tuple[str, tuple[_Part, ...]]:
        statement = self._sql.get(alias)
        if statement is None:
            statement = self._sql[alias] = self._compose(alias)
        return statement

    def _build(self, alias: str, parts: tuple[_Part, ...], row: Sequence[Any]) -> M:
        instances: list[Model | None] = []
        for part in parts:
            values = list(row[part.start : part.start + len(part.attnames)])
            if part.parent is not None and values[0] is None:
                instance = None  # the outer join found nothing: a null foreign key
            else:
                for index, converter, column in part.converters:
                    values[index] = converter(values[index], column, connections[alias])
                instance = part.model.from_db(alias, part.attnames, values)
            if part.field is not None:
                owner = instances[part.parent]  # type: ignore[index]
                if owner is not None:
                    part.field.set_cached_value(owner, instance)
            instances.append(instance)
        main = instances[0]
        for offset, name in enumerate(self.extra, start=len(row) - len(self.extra)):
            setattr(main, name, row[offset])
        return main  # type: ignore[return-value]

    def in_bulk(
        self,
        pks: Iterable[Any],
        *,
        where: tuple[str, Sequence[Any]] | None = None,
        using: str = DEFAULT_DB_ALIAS,
    ) -> dict[Any, M]:
        """{pk: instance} of those of `pks` that exist (and meet the SQL condition `where`
        on ``t0``, with its parameters)."""
        wanted = list(pks)
        if not wanted:
            return {}
        pk = connections[using].ops.quote_name(self.model._meta.pk.column)
        condition = f"t0.{pk} = ANY(%s)"
        params: list[Any] = [wanted]
        if where is not None:
            condition = f"{condition} AND ({where[0]})"
            params.extend(where[1])
        found = self.filter((condition, params), using=using)
        return {instance.pk: instance for instance in found}

    def filter(
        self,
        where: tuple[str, Sequence[Any]],
        *,
        order_by: str = "",
        using: str = DEFAULT_DB_ALIAS,
    ) -> list[M]:
        """The instances meeting the SQL condition `where` on ``t0`` (with its parameters),
        in the SQL order `order_by` if given."""
        sql, parts = self._statement(using)
        sql = f"{sql} WHERE {where[0]}"
        if order_by:
            sql = f"{sql} ORDER BY {order_by}"
        with connections[using].cursor() as cursor:
            prepared.execute(cursor, sql, where[1])
            rows = cursor.fetchall()
        return [self._build(using, parts, row) for row in rows]

    def get(
        self,
        pk: Any,
        *,
        where: tuple[str, Sequence[Any]] | None = None,
        using: str = DEFAULT_DB_ALIAS,
    ) -> M | None:
        """The instance with primary key `pk` (meeting `where`), or None."""
        return self.in_bulk([pk], where=where, using=using).get(pk)


# model -> the INSERT of its concrete fields (all but an auto primary key) and those fields
_inserts: dict[tuple[type[Model], str], tuple[str, tuple[Any, ...]]] = {}


def insert(instance: Model, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Save a new `instance` as ``instance.save(force_insert=True)`` saves it, by a
    statement composed once per model and prepared once per session (crm.prepared): the
    values are the fields' own (``pre_save``, ``get_db_prep_save``), the database's primary
    key is set on the instance, and the save signals are sent when anyone listens. For the
    rows every registration writes; building and compiling the ORM's INSERT cost more than
    running it."""
    model = type(instance)
    meta = model._meta
    if meta.auto_field is None or instance.pk is not None or meta.parents:
        instance.save(force_insert=True, using=using)  # not the shape composed here
        return
    connection = connections[using]
    statement = _inserts.get((model, using))
    if statement is None:
        quote = connection.ops.quote_name
        fields = tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field)
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))})"
        )
        sql += f" RETURNING {quote(meta.auto_field.column)}"
        statement = _inserts[(model, using)] = (sql, fields)
    sql, fields = statement
    if signals.pre_save.has_listeners(model):
        signals.pre_save.send(
            sender=model, instance=instance, raw=False, using=using, update_fields=None
        )
    # Django's own check that no related object is unsaved (not in its type stubs).
    instance._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, values)
        setattr(instance, meta.auto_field.attname, cursor.fetchone()[0])
    instance._state.adding = False
    instance._state.db = using
    if signals.post_save.has_listeners(model):
        signals.post_save.send(
            sender=model,
            instance=instance,
            created=True,
            update_fields=None,
            raw=False,
            using=using,
        )
