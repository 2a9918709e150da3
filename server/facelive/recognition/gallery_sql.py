"""How each gallery backend spells the statements both run (gallery_reads.py and
gallery_writes.py hold them, written once). A statement is written with `?` for a parameter
and `{people}`, `{examples}`, `{crop_keys}`, `{embeddings}` for the tables; a Dialect turns it
into its driver's text, and fills in the few words where the backends' SQL really differs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TABLES = ("people", "examples", "crop_keys", "embeddings")


@dataclass(frozen=True)
class Dialect:
    """mark: the driver's parameter ("?" for sqlite3, "%s" for psycopg). schema: what comes
    before a table's name ("facelive." where the tables live in a schema of their own).
    arrays: the driver passes a list as one array parameter (`= ANY(%s)`), so an id list is
    one parameter, not one each. bytewise: what sorts names bytewise, as SQLite's default
    collation does, so that both backends list people in one order. crops and crop_key: the
    example rows with each crop's key where crops are sealed (gallery_pg.py), else NULL.
    upsert_vector: store or replace one vector if its example still exists, taking (example,
    embedder, dim, vector, example). tables: every table, children first (clear() empties
    them in this order)."""

    mark: str
    upsert_vector: str
    tables: tuple[str, ...]
    schema: str = ""
    arrays: bool = False
    bytewise: str = ""
    crops: str = "{examples} e"
    crop_key: str = "NULL"

    def sql(self, text: str) -> str:
        """`text` as this backend's driver takes it."""
        names = {table: f"{self.schema}{table}" for table in TABLES}
        words = {"bytewise": self.bytewise, "crop_key": self.crop_key,
                 "crops": self.crops.format(**names)}
        return text.format(**names, **words).replace("?", self.mark)

    def one_of(self, column: str, values: Sequence[int]) -> tuple[str, tuple[Any, ...]]:
        """The condition "`column` is one of `values`" and its parameters."""
        if self.arrays:
            return f"{column} = ANY(?)", (list(values),)
        return f"{column} IN ({','.join('?' * len(values))})", tuple(values)
