"""SQLAlchemy Core statements run on the pooled DB-API connection: SQLAlchemy's SQL and types, less CPU.

Why
---
The answer path (`storage.repository.Repository.apply_step` and the reads made for every answer) runs
the same handful of statements again and again. SQLAlchemy's `Connection.execute` of a cached Core
statement costs ~50–90 µs CPU each (execution context, result metadata, events); a raw DB-API
``cursor.execute`` ~5–15 µs. This module keeps SQLAlchemy as the *source* of the SQL and of the value
conversions and only skips its per-execution machinery:

* `FastStatement` compiles a Core statement once per dialect (``stmt.compile(dialect=…)``, with the
  ``column_keys`` an INSERT/UPDATE is executed with, as `Connection.execute` itself would) and keeps the
  SQL text, the order of its parameters and each parameter's ``bind_processor`` (the bound type's
  ``dialect_impl(dialect).bind_processor(dialect)``: `storage.models.UTCDateTime` turns an aware
  datetime into naive UTC exactly as through SQLAlchemy; JSON is serialised by the dialect's JSON type).
  Result columns get their type's ``result_processor(dialect, coltype)``, ``coltype`` being the
  DB-API ``cursor.description`` type code, as SQLAlchemy passes it.
* `FastConnection` executes them on the pooled DB-API connection of one transaction (or, when the
  engine has listeners that must see every statement, through a SQLAlchemy `Connection`: see below).

Statements this module refuses (ValueError at compile time) rather than mis-run: ones whose parameters
are rendered after compilation (``in_()`` of a Python list — write ``in_([bindparam(…, value), …])``
instead, ``literal_execute``), that need Python-side column defaults or onupdate values filled in
(pass every column that has one), or bind names that the paramstyle must escape.

Errors are SQLAlchemy's: a DB-API error is re-raised as the matching `sqlalchemy.exc.DBAPIError`
subclass (``IntegrityError``, ``OperationalError`` …) built by `sqlalchemy.exc.DBAPIError.instance`,
so callers catch the same exceptions as with `Connection.execute`; a disconnect invalidates the pooled
connection as SQLAlchemy would.

Instrumentation: when the engine has ``before_cursor_execute`` / ``after_cursor_execute`` listeners or
``echo`` (OpenTelemetry-style tracing, statement-counting tests, SQL logging), the same compiled SQL
and processed parameters go through a SQLAlchemy `Connection`'s ``exec_driver_sql`` instead, so every
statement is still seen; only the CPU saving is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Select

_Processor = Callable[[Any], Any] | None
_MISSING = object()


class CompiledStatement:
    """One `FastStatement` compiled for one dialect (and one set of INSERT/UPDATE column keys).

    ``sql``: the statement text in the DB-API's paramstyle; ``positional``: parameters go as a tuple
    (``qmark``/``numeric``) else as a dict (``pyformat``/``named``); `params` turns a mapping of bind
    names to Python values into DB-API parameters (bind processors applied, bound defaults filled in).
    """

    __slots__ = ("sql", "positional", "_name_seq", "_procs_at", "_defaults", "_columns", "_dialect", "_procs",
                 "_procs_ready")

    def __init__(self, stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None,
                 for_executemany: bool) -> None:
        returning = list(getattr(stmt, "exported_columns", ()) or ()) if not isinstance(stmt, Select) else []
        # DML without an explicit RETURNING is compiled as for executemany even when run once: SQLAlchemy
        # adds an implicit ``RETURNING id`` to a single-row INSERT on PostgreSQL that nobody reads here.
        if getattr(stmt, "is_dml", False) and not returning:
            for_executemany = True
        kw: dict[str, Any] = {"for_executemany": for_executemany}
        if column_keys is not None:
            kw["column_keys"] = list(column_keys)
        compiled: Any = stmt.compile(dialect=dialect, **kw)
        if getattr(compiled, "literal_execute_params", None) or getattr(compiled, "post_compile_params", None):
            raise ValueError(f"parameters rendered after compilation are not supported: {compiled.string!r}")
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            missing = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            raise ValueError(f"columns with Python-side defaults must be given: {missing}")
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError(f"bind names needing escapes are not supported: {compiled.escaped_bind_names}")
        self.sql: str = compiled.string
        self._dialect = dialect
        self.positional: bool = bool(dialect.positional)
        names: Sequence[str] = compiled.positiontup if self.positional else list(compiled.binds)
        if self.positional and names is None:
            raise ValueError("positional dialect without a parameter order")
        order: list[tuple[str, _Processor]] = []
        defaults: dict[str, Any] = {}
        for name in names:
            bp = compiled.binds[name]
            order.append((name, bp.type.dialect_impl(dialect).bind_processor(dialect)))
            if bp.callable is not None:
                raise ValueError(f"bind parameter {name!r} with a callable value is not supported")
            if bp.value is not None or not bp.required:
                defaults[name] = bp.value
        self._name_seq = tuple(n for n, _p in order)
        self._procs_at = tuple((i, p) for i, (_n, p) in enumerate(order) if p is not None)
        self._defaults = defaults
        cols = list(stmt.selected_columns) if isinstance(stmt, Select) else returning
        self._columns = tuple(c.type for c in cols)
        self._procs: tuple[_Processor, ...] | None = None
        self._procs_ready = False

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """DB-API parameters for one execution: bind name -> value, processed by the bound types.
        Raises KeyError for a bind parameter without a value (and no bound default)."""
        d = self._defaults
        try:
            out = [values[n] if n not in d else values.get(n, d[n]) for n in self._name_seq]
        except KeyError as exc:
            raise KeyError(f"no value for bind parameter {exc.args[0]!r} of {self.sql!r}") from None
        for i, proc in self._procs_at:
            out[i] = proc(out[i])
        if self.positional:
            return tuple(out)
        return dict(zip(self._name_seq, out, strict=True))

    def result_processors(self, description: Sequence[Sequence[Any]] | None) -> tuple[_Processor, ...] | None:
        """The result processors of the selected / RETURNING columns (None when no column needs one),
        from the cursor ``description`` of the first execution (its DB-API type codes are the
        ``coltype`` SQLAlchemy passes): a statement's result types are fixed by the schema, so later
        executions reuse them without reading the description (psycopg builds it anew on every read)."""
        if self._procs_ready:
            return self._procs
        if description is None or len(self._columns) != len(description):
            raise ValueError(f"result columns {description!r}, expected {len(self._columns)}: {self.sql!r}")
        procs = tuple(t.dialect_impl(self._dialect).result_processor(self._dialect, d[1])
                      for t, d in zip(self._columns, description, strict=True))
        self._procs = procs if any(p is not None for p in procs) else None
        self._procs_ready = True
        return self._procs

    @property
    def returns_rows(self) -> bool:
        """True for a SELECT or a statement with RETURNING."""
        return bool(self._columns)


class FastStatement:
    """A Core statement (built once, at import) that `FastConnection` runs without SQLAlchemy's
    per-execution overhead. Compiled lazily, once per (engine, column keys, executemany) and cached in
    the `FastConnection`'s cache (one per `storage.db.Database`).

    ``stmt`` is a `ClauseElement` or a mapping of dialect name (``"sqlite"``, ``"postgresql"``) to one,
    for dialect-specific statements (``INSERT … ON CONFLICT``). See the module doc for what is refused.
    """

    def __init__(self, stmt: ClauseElement | Mapping[str, ClauseElement]) -> None:
        self._stmts: Mapping[str, ClauseElement] | None = stmt if isinstance(stmt, Mapping) else None
        self._stmt: ClauseElement | None = None if isinstance(stmt, Mapping) else stmt
        first = self._stmt if self._stmt is not None else next(iter(self._stmts.values()))  # type: ignore[union-attr]
        #: INSERT / UPDATE: compiled for the column keys it is executed with (as `Connection.execute` does).
        self.sets_columns = bool(getattr(first, "is_dml", False) and not getattr(first, "is_delete", False))

    def statement(self, dialect_name: str) -> ClauseElement:
        """The Core statement run on ``dialect_name`` (KeyError if there is none for it)."""
        return self._stmt if self._stmt is not None else self._stmts[dialect_name]  # type: ignore[index]

    def compiled(self, dialect: Dialect, column_keys: Iterable[str] | None = None, executemany: bool = False,
                 cache: dict[Any, CompiledStatement] | None = None) -> CompiledStatement:
        """The statement compiled for ``dialect``; ``column_keys``: the INSERT/UPDATE columns given
        (ignored for other statements). ``cache``: where compiled forms are kept, one dict per dialect
        instance (`FastConnection` passes its Database's, so they live as long as the engine; None:
        compile anew). Raises ValueError for an unsupported statement, KeyError for a dialect without
        a statement."""
        keys = tuple(column_keys) if column_keys is not None and self.sets_columns else None
        if cache is None:
            return CompiledStatement(self.statement(dialect.name), dialect, keys, executemany)
        cache_key = (self, keys, executemany)
        c = cache.get(cache_key)
        if c is None:  # two threads may both compile once: the same result, the last one kept
            c = cache[cache_key] = CompiledStatement(self.statement(dialect.name), dialect, keys, executemany)
        return c


def engine_is_instrumented(engine: Engine) -> bool:
    """True when statements must go through SQLAlchemy so listeners / echo see them (module doc)."""
    d = engine.dispatch
    return bool(engine.echo or d.before_cursor_execute or d.after_cursor_execute)


class FastConnection:
    """The statements of one transaction (or one read) on a pooled DB-API connection.

    Made by `storage.db.Database.fast_write` / `fast_read`; not thread-safe (one thread at a time, like
    the connection). ``via`` is the SQLAlchemy `Connection` statements go through instead when the engine
    is instrumented (module doc); ``cache`` the compiled statements of this engine (`FastStatement.compiled`). Results are lists of tuples with the result processors applied.
    """

    __slots__ = ("dialect", "_dbapi_conn", "_fairy", "_via", "_cursor", "_dbapi_error", "_cache")

    def __init__(self, dialect: Dialect, dbapi_conn: Any, *, fairy: Any = None, via: Connection | None = None,
                 cache: dict[Any, CompiledStatement] | None = None) -> None:
        self.dialect = dialect
        self._cache: dict[Any, CompiledStatement] = cache if cache is not None else {}
        self._dbapi_conn = dbapi_conn
        self._fairy = fairy
        self._via = via
        self._cursor: Any = None
        self._dbapi_error: type[Exception] = dialect.loaded_dbapi.Error

    # ------------------------------------------------------------------ executing
    def _run(self, c: CompiledStatement, params: Any, many: bool) -> Any:
        """Execute; returns the cursor (raw) or the SQLAlchemy CursorResult (``via``)."""
        if self._via is not None:
            return self._via.exec_driver_sql(c.sql, params if not many else list(params))
        cur = self._cursor
        if cur is None:
            cur = self._cursor = self._dbapi_conn.cursor()
        try:
            if many:
                cur.executemany(c.sql, params)
            else:
                cur.execute(c.sql, params)
        except self._dbapi_error as exc:
            raise self.wrap_error(exc, c.sql, params, many) from exc
        return cur

    def wrap_error(self, exc: Exception, statement: str | None, params: Any = None, many: bool = False) -> BaseException:
        """The `sqlalchemy.exc.DBAPIError` subclass for a DB-API error (as `Connection.execute` raises
        it); invalidates the pooled connection if the error means the connection is gone."""
        invalidated = False
        try:
            invalidated = bool(self.dialect.is_disconnect(exc, self._dbapi_conn, self._cursor))
        except Exception:  # noqa: BLE001 - classifying must never hide the real error
            invalidated = False
        if invalidated and self._fairy is not None:
            self._fairy.invalidate(exc)
            self._cursor = None
        return DBAPIError.instance(statement, params, exc, self._dbapi_error, connection_invalidated=invalidated,
                                   dialect=self.dialect, ismulti=many)

    def execute(self, stmt: FastStatement, values: Mapping[str, Any] | None = None, *,
                column_keys: Iterable[str] | None = None) -> list[tuple[Any, ...]]:
        """Run ``stmt`` once with ``values`` (bind name -> Python value); the result rows (``[]`` for a
        statement without rows). ``column_keys``: the columns an INSERT/UPDATE sets (default: the keys
        of ``values``; ignored for other statements). Raises `sqlalchemy.exc.DBAPIError` subclasses."""
        values = values or {}
        c = stmt.compiled(self.dialect, (column_keys if column_keys is not None else values) if stmt.sets_columns else None,
                          cache=self._cache)
        res = self._run(c, c.params(values), False)
        return self._rows(c, res)

    def first(self, stmt: FastStatement, values: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        """The first result row of ``stmt`` or None (see `execute`)."""
        rows = self.execute(stmt, values)
        return rows[0] if rows else None

    def executemany(self, stmt: FastStatement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run an INSERT/UPDATE/DELETE once per mapping of ``rows`` (all with the same keys), as one
        DB-API ``executemany``. Nothing for an empty ``rows``."""
        if not rows:
            return
        c = stmt.compiled(self.dialect, rows[0] if stmt.sets_columns else None, executemany=True, cache=self._cache)
        if len(rows) == 1:  # the usual case: one plain execute (psycopg's executemany sets up a pipeline)
            self._run(c, c.params(rows[0]), False)
        else:
            self._run(c, [c.params(r) for r in rows], True)

    def _rows(self, c: CompiledStatement, res: Any) -> list[tuple[Any, ...]]:
        if not c.returns_rows:
            return []
        if self._via is not None:
            procs = c.result_processors(res.cursor.description if not c._procs_ready else None)
            raw: list[Any] = [tuple(r) for r in res.fetchall()]
        else:
            procs = c.result_processors(res.description if not c._procs_ready else None)
            try:
                raw = res.fetchall()
            except self._dbapi_error as exc:
                raise self.wrap_error(exc, c.sql) from exc
        if procs is None:
            return [tuple(r) for r in raw]
        return [tuple([v if p is None else p(v) for p, v in zip(procs, r, strict=True)]) for r in raw]

    def close_cursor(self) -> None:
        """Close the cursor of this connection (done by `storage.db.Database` at the end)."""
        if self._cursor is not None:
            try:
                self._cursor.close()
            finally:
                self._cursor = None
