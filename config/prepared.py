"""ORM querysets compiled to SQL once per process, then run with new ids.

Django compiles a queryset to SQL every time it is evaluated. For the small reads every page runs
(a row by id, with a join or two) compiling costs several times running: 0.42 ms of the 0.61 ms
that loading a circle membership with its circle takes on SQLite. A `PreparedQuery` keeps the
queryset written with the ORM, compiles it the first time, and afterwards only executes the SQL
and builds the model instances the way Django's own ModelIterable does (deferred fields, select_related,
annotations, the backend's converters).

    _THREAD = PreparedQuery(lambda pk: Thread.objects.select_related("author").filter(pk=pk))
    thread = _THREAD.get(pk)

The function receives one marker integer per parameter and must return a queryset whose SQL
depends only on those values' positions: ids in filters, nothing that changes the query's shape
(an `in` list of varying length, a slice, a lookup chosen from an argument). Only integers pass
through: the markers are found again among the compiled SQL's parameters.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

_SMALLEST_ID, _LARGEST_ID = -(2**63), 2**63 - 1  # a 64-bit integer column's range
# Far outside any id a table will hold, and different from every constant a filter might carry.
_MARKER = -7_331_000_000_000


@dataclass(frozen=True)
class _Compiled:
    alias: str
    sql: str
    params: tuple  # each compiled parameter: ("argument", index) or ("constant", value)
    query: object  # the compiled Query, to make a compiler for the converters of each run
    select: list
    klass_info: dict
    annotation_col_map: dict
    init_list: list[str]
    model_fields: slice
    related_populators: list


class PreparedQuery:
    def __init__(self, build: Callable[..., QuerySet]):
        self._build = build
        self._compiled: _Compiled | None = None

    def fetch(self, *ids: int, limit: int | None = None, offset: int = 0) -> list[Model]:
        """The rows for these ids, in the queryset's order; `limit` and `offset` page them."""
        compiled = self._compiled or self._compile(len(ids))
        if not all(_SMALLEST_ID <= value <= _LARGEST_ID for value in ids):
            return []  # no row has that id (and SQLite cannot take it): Django's own answer too
        sql = compiled.sql
        params = [ids[value] if kind == "argument" else value for kind, value in compiled.params]
        if limit is not None:
            sql += " LIMIT %s OFFSET %s"
            params += [limit, offset]
        return self._run(compiled, sql, params)

    def get(self, *ids: int) -> Model:
        """The one row for these ids; the model's DoesNotExist (or MultipleObjectsReturned)."""
        rows = self.fetch(*ids, limit=2)
        model = self._compiled.klass_info["model"]
        if not rows:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(f"get() returned more than one {model._meta.object_name}.")
        return rows[0]

    def _compile(self, arity: int) -> _Compiled:
        """Compile the queryset once (two threads doing it at once compile the same thing)."""
        queryset = self._build(*(_MARKER - index for index in range(arity)))
        if queryset._prefetch_related_lookups or queryset._known_related_objects or queryset.query.is_sliced:
            # Each of these is applied outside the compiled SQL, or collides with fetch()'s LIMIT.
            raise ValueError("A prepared queryset cannot prefetch, come from a related manager or be sliced.")
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, compiled_params = compiler.as_sql()
        params = []
        for value in compiled_params:
            index = _MARKER - value if isinstance(value, int) else -1
            params.append(("argument", index) if 0 <= index < arity else ("constant", value))
        missing = set(range(arity)) - {value for kind, value in params if kind == "argument"}
        if missing:
            raise ValueError(f"Parameters {sorted(missing)} are not in the compiled SQL: pass ids only.")
        klass_info = compiler.klass_info
        fields = klass_info["select_fields"]
        model_fields = slice(fields[0], fields[-1] + 1)
        self._compiled = _Compiled(
            alias=queryset.db,
            sql=sql,
            params=tuple(params),
            query=queryset.query,
            select=compiler.select,
            klass_info=klass_info,
            annotation_col_map=compiler.annotation_col_map or {},
            init_list=[column[0].target.attname for column in compiler.select[model_fields]],
            model_fields=model_fields,
            related_populators=get_related_populators(klass_info, compiler.select, queryset.db),
        )
        return self._compiled

    def _run(self, compiled: _Compiled, sql: str, params: list) -> list[Model]:
        connection = connections[compiled.alias]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        compiler = compiled.query.get_compiler(connection=connection)
        compiler.select, compiler.col_count = compiled.select, len(compiled.select)
        model = compiled.klass_info["model"]
        objects = []
        for row in compiler.results_iter([rows]):
            instance = model.from_db(compiled.alias, compiled.init_list, row[compiled.model_fields])
            for populator in compiled.related_populators:
                populator.populate(row, instance)
            for name, position in compiled.annotation_col_map.items():
                setattr(instance, name, row[position])
            objects.append(instance)
        return objects
