"""The PostgreSQL gallery's own promises, on a real PostgreSQL (tests/services.py): schema
versions, secure deletion, writers in several processes, change notices (and a full reload
after a lost connection), and moving a gallery between SQLite and PostgreSQL with the CLI.
The behaviour both backends share is tested on both in tests/recognition/test_gallery.py."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recognition"))
from gallery_samples import patches, vectors  # noqa: E402

from facelive.cli.common import run_command  # noqa: E402
from facelive.cli.gallery_commands import add_gallery_commands  # noqa: E402
from facelive.recognition.gallery import Gallery, GalleryCorrupt, GalleryError  # noqa: E402
from facelive.recognition.gallery_open import gallery_exists, open_gallery  # noqa: E402
from facelive.recognition.gallery_pg import PG_MIGRATIONS, PgGallery  # noqa: E402
from facelive.recognition.gallery_pg_db import NoGallery  # noqa: E402
from facelive.settings import Settings, SettingsError  # noqa: E402


def wait_for(check, within_s: float) -> float:
    """Seconds until check() is true; AssertionError after within_s."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"not within {within_s} s")
        time.sleep(0.01)
    return time.monotonic() - start


def test_settings_choose_the_backend(tmp_path: Path, pg_url: str) -> None:
    sqlite = Settings.from_env({"FACELIVE_DATA": str(tmp_path)})
    assert sqlite.database_url is None and not gallery_exists(sqlite)
    with open_gallery(sqlite) as g:
        assert isinstance(g, Gallery)
    pg = Settings.from_env({"FACELIVE_DATA": str(tmp_path), "FACELIVE_DATABASE_URL": pg_url})
    assert not gallery_exists(pg)
    with open_gallery(pg) as g:
        assert isinstance(g, PgGallery)
    assert gallery_exists(pg)
    with pytest.raises(SettingsError, match="FACELIVE_DATABASE_URL"):
        Settings.from_env({"FACELIVE_DATABASE_URL": "mysql://x"})
    with pytest.raises(SettingsError, match="FACELIVE_MESSAGE_QUEUE"):
        Settings.from_env({"FACELIVE_MESSAGE_QUEUE": "amqp://x"})


def test_schema_versions_and_foreign_schemas(pg_url: str) -> None:
    with pytest.raises(NoGallery):
        PgGallery(pg_url, create=False)
    with PgGallery(pg_url) as g:
        assert g.schema_version == len(PG_MIGRATIONS)
        g.add_examples("Anna", patches(1, 1), vectors(1, 1), "dlib-resnet", "upload")

    def v2(conn: psycopg.Connection) -> None:
        conn.execute("ALTER TABLE facelive.people ADD COLUMN note TEXT")

    with PgGallery(pg_url, migrations=(*PG_MIGRATIONS, v2)) as g:  # upgrade keeps the data
        assert g.schema_version == 2 and [p.name for p in g.people()] == ["Anna"]
    with pytest.raises(GalleryError, match="newer FaceLive"):
        PgGallery(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA facelive CASCADE")
        conn.execute("CREATE SCHEMA facelive")
        conn.execute("CREATE TABLE facelive.other (x int)")
    with pytest.raises(GalleryCorrupt, match="not a FaceLive gallery"):
        PgGallery(pg_url)


def test_a_failed_migration_leaves_the_old_version(pg_url: str) -> None:
    PgGallery(pg_url).close()

    def broken(conn: psycopg.Connection) -> None:
        conn.execute("ALTER TABLE facelive.people ADD COLUMN note TEXT")
        conn.execute("SELECT no_such_function()")

    with pytest.raises(GalleryError):
        PgGallery(pg_url, migrations=(*PG_MIGRATIONS, broken))
    with PgGallery(pg_url) as g:
        assert g.schema_version == 1
        g.add_person("Still fine")


def raw_pages(conn: psycopg.Connection, relation: str) -> bytes:
    """A table's pages as they are on disk, dead tuples and free space included."""
    count = conn.execute("SELECT pg_relation_size(%s::regclass) / 8192",
                         (relation,)).fetchone()[0]
    return b"".join(conn.execute("SELECT get_raw_page(%s, %s)", (relation, i)).fetchone()[0]
                    for i in range(count))


def test_deleted_patches_are_not_readable_through_the_database(pg_url: str) -> None:
    """Patches are sealed at rest, each with its own key; a delete destroys the keys (and the
    name) down to the raw pages, so whatever the big table's free space still holds can never
    be opened."""
    secret = patches(7, 3)
    # From the entropy-coded end (JPEG headers are alike), short enough to sit inside one
    # TOAST chunk.
    probe = secret[0].jpeg[-200:-168]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION pageinspect")
            inspect = True
        except psycopg.Error:
            inspect = False  # a PostgreSQL without contrib: the SQL checks below still hold
    with PgGallery(pg_url) as g, psycopg.connect(pg_url, autocommit=True) as conn:
        g.add_examples("Keep", patches(1, 3), vectors(1, 3), "dlib-resnet", "upload")
        added = g.add_examples("Forget Me Zq", secret, vectors(7, 3), "dlib-resnet", "upload")
        g.add_examples("Keep too", patches(2, 3), vectors(2, 3), "dlib-resnet", "upload")
        assert [g.crop(i) for i in added.example_ids] == [p.jpeg for p in secret]
        keys = [bytes(row[0]) for row in conn.execute(
            "SELECT key FROM facelive.crop_keys WHERE example = ANY(%s) ORDER BY example",
            (added.example_ids,))]
        toast = conn.execute("SELECT reltoastrelid::regclass::text FROM pg_class "
                             "WHERE oid = 'facelive.examples'::regclass").fetchone()[0]
        if inspect:
            for relation in (toast, "facelive.examples"):
                assert probe not in raw_pages(conn, relation)  # sealed at rest
            assert all(k in raw_pages(conn, "facelive.crop_keys") for k in keys)
        assert g.remove_examples(added.example_ids[:1]) == 1  # one bad photo ...
        if inspect:
            assert keys[0] not in raw_pages(conn, "facelive.crop_keys")
            assert keys[1] in raw_pages(conn, "facelive.crop_keys")
        g.delete("forget me zq")  # ... then the person
        rows = conn.execute("SELECT (SELECT count(*) FROM facelive.examples), "
                            "(SELECT count(*) FROM facelive.crop_keys)").fetchone()
        assert rows == (6, 6)
        assert {e.patch.jpeg for e in g.examples()}.isdisjoint(p.jpeg for p in secret)
        if inspect:
            pages = raw_pages(conn, "facelive.crop_keys")
            assert not any(k in pages for k in keys)
            assert b"Forget Me Zq" not in raw_pages(conn, "facelive.people")
            assert b"forget me zq" not in raw_pages(conn, "facelive.people")


def test_writers_in_two_connections_and_their_notices(pg_url: str) -> None:
    first, second = PgGallery(pg_url), PgGallery(pg_url)
    first.listen()
    second.listen()
    errors: list[BaseException] = []

    def writer(g: PgGallery, name: str, seed: int) -> None:
        try:
            for i in range(6):
                g.add_examples(name, patches(seed + i, 1), vectors(seed + i, 1),
                               "dlib-resnet", "upload")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # Two writers adding the same new person at once: one person, never a duplicate.
    threads = [threading.Thread(target=writer, args=(g, "Same", seed))
               for g, seed in ((first, 100), (second, 200), (first, 300))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [(p.name, p.examples) for p in first.people()] == [("Same", 18)]
    wait_for(second.changed_elsewhere, 1.0)
    wait_for(first.changed_elsewhere, 1.0)
    time.sleep(0.5)  # the last of the 18 notices are in: take them, then all is quiet
    first.changed_elsewhere(), second.changed_elsewhere()
    time.sleep(0.3)
    assert not first.changed_elsewhere() and not second.changed_elsewhere()
    first.add_person("Only first")
    assert wait_for(second.changed_elsewhere, 1.0) < 1.0
    time.sleep(0.3)
    assert not first.changed_elsewhere()  # its own change is no news to it
    # A refused change commits nothing, so it sends no notice.
    with pytest.raises(GalleryError):
        first.rename("Nobody", "Someone")
    time.sleep(0.3)
    assert not second.changed_elsewhere()
    first.close()
    second.close()


def test_a_lost_listener_connection_means_a_full_reload(pg_url: str) -> None:
    with PgGallery(pg_url) as g:
        g.listen()
        listener = g._listener
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                          "query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()")
        wait_for(g.changed_elsewhere, 5.0)  # may have missed something: reload
        wait_for(lambda: listener.reconnects >= 1, 5.0)
        # Listening again: the next change is heard.
        with PgGallery(pg_url) as other:
            time.sleep(0.2)
            g.changed_elsewhere()
            other.add_person("After the cut")
        wait_for(g.changed_elsewhere, 1.0)
    # The gallery's own connection, cut: the next call opens a new one.
    with PgGallery(pg_url) as g:
        g.add_person("A")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                          "application_name = 'facelive' AND pid <> pg_backend_pid()")
        with pytest.raises(GalleryError):
            g.people()  # this one finds the connection gone ...
        assert [p.name for p in g.people()] == ["A", "After the cut"]  # the next reconnects


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser(prog="facelive")
    add_gallery_commands(parser.add_subparsers(dest="command", required=True))
    assert run_command(parser.parse_args(argv)) == 0
    return capsys.readouterr().out


def test_cli_moves_a_gallery_from_sqlite_to_postgresql_and_back(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "data"
    with Gallery.in_dir(data) as g:
        g.add_examples("Zoë 李", patches(1, 2), vectors(1, 2), "dlib-resnet", "webcam")
        g.add_examples("Bob", patches(2, 1), vectors(2, 1), "dlib-resnet", "upload")
        g.set_embeddings("facenet", {1: vectors(5, 1, 512)[0]})
    monkeypatch.delenv("FACELIVE_DATABASE_URL", raising=False)
    cli(["gallery", "export", str(tmp_path / "a.zip"), "--data-dir", str(data)], capsys)
    monkeypatch.setenv("FACELIVE_DATABASE_URL", pg_url)
    assert "2 new people" in cli(["gallery", "import", str(tmp_path / "a.zip"),
                                  "--data-dir", str(data)], capsys)
    assert "Zoë 李\t2 example(s)" in cli(["people", "list", "--data-dir", str(data)], capsys)
    cli(["people", "rename", "bob", "Robert", "--data-dir", str(data)], capsys)
    cli(["gallery", "export", str(tmp_path / "b.zip"), "--data-dir", str(data)], capsys)
    monkeypatch.delenv("FACELIVE_DATABASE_URL")
    back = tmp_path / "back"
    cli(["gallery", "import", str(tmp_path / "b.zip"), "--data-dir", str(back)], capsys)
    with Gallery.in_dir(data) as a, Gallery.in_dir(back) as b, PgGallery(pg_url) as p:
        assert [x.name for x in b.people()] == ["Robert", "Zoë 李"]
        assert by_face(a) == by_face(p) == by_face(b)


def by_face(g: Gallery) -> dict[bytes, tuple[str, dict[str, bytes]]]:
    """JPEG -> (its source, its vectors by embedder): a gallery's content, whatever its ids."""
    vectors_of: dict[int, dict[str, bytes]] = {}
    for embedder in g.embedders():
        stored = g.vectors(embedder)
        for example, row in zip(stored.example_ids, stored.matrix, strict=True):
            vectors_of.setdefault(int(example), {})[embedder] = row.tobytes()
    return {e.patch.jpeg: (e.source, vectors_of.get(e.id, {})) for e in g.examples()}
