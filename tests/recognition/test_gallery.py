"""The gallery on real SQLite files: names, transactions, refused changes, migrations, opening
damaged or foreign files, deletion for good, export and import."""

from __future__ import annotations

import os
import sqlite3
import threading
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gallery_samples import DIM, patches, vectors
from hypothesis import given
from hypothesis import strategies as st

from facelive.recognition import gallery as gallery_module
from facelive.recognition.archive import export_gallery, import_archive
from facelive.recognition.gallery import (
    APPLICATION_ID,
    FILENAME,
    MIGRATIONS,
    Gallery,
    GalleryCorrupt,
    GalleryError,
    PersonExists,
    PersonNotFound,
)
from facelive.recognition.names import (
    MAX_NAME_LENGTH,
    InvalidName,
    NameError_,
    name_key,
    validate_name,
)
from facelive.recognition.patches import decode_patch


def dump(path: Path) -> tuple[str, int, int]:
    """Everything in the file, as SQL text, plus the header's version fields."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        text = "\n".join(conn.iterdump())
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app = conn.execute("PRAGMA application_id").fetchone()[0]
    finally:
        conn.close()
    return text, version, app


def dump_any(g: Gallery) -> object:
    """Everything stored, whichever backend holds it."""
    if isinstance(g, Gallery):
        return dump(g.path)
    from services import dump_database

    return dump_database(g.url)


# The tests of behaviour run on both backends: the SQLite file and PostgreSQL (a real server
# that tests/services.py starts; skipped with the reason when it cannot, failed in CI).
@pytest.fixture(params=["sqlite", "postgresql"])
def gallery(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        with Gallery.in_dir(tmp_path / "data") as g:
            yield g
        return
    from facelive.recognition.gallery_pg import PgGallery

    with PgGallery(request.getfixturevalue("pg_url")) as g:
        yield g


# ---------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Zoë 李", "Zoë 李"),
        ("  Ана  Мария\u00a0 ", "Ана Мария"),
        ("Zoe\u0308", "Zoë"),  # decomposed input is stored composed (NFC)
        ("محمد علی", "محمد علی"),
        ("می\u200cخواهم", "می\u200cخواهم"),  # ZWNJ is part of Persian spelling
        ("O'Brien-Smith Jr.", "O'Brien-Smith Jr."),
        ("x" * MAX_NAME_LENGTH, "x" * MAX_NAME_LENGTH),
        ("...", "..."),  # only "." and ".." are path segments
        (".NET", ".NET"),
    ],
)
def test_names_accepted(raw: str, stored: str) -> None:
    assert validate_name(raw) == stored
    assert unicodedata.is_normalized("NFC", validate_name(raw))


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   \u3000 ", "empty"),
        ("x" * (MAX_NAME_LENGTH + 1), "at most 100"),
        ("Ann\x00a", "control"),
        ("Ann\na", "control"),
        ("Ann\ta", "control"),
        ("Ann\x7f", "control"),
        ("evil\u202egnp.exe", "control"),
        ("\u2066Bob\u2069", "control"),
        ("Bob\u200b", "control"),
        ("\ufeffBob", "control"),
        ("AC/DC", "'/'"),
        ("back\\slash", "'/'"),
        ("Unknown", "reserved"),
        ("\U000e0001tag", "control"),  # invisible language tag
        ("soft\u00adhyphen", "control"),
        ("\u0378", "unassigned"),
        (".", "may not be '.'"),
        ("..", "may not be '..'"),
        (" .. ", "may not be '..'"),  # stripped first, so spaces do not sneak it in
    ],
)
def test_names_refused(raw: str, why: str) -> None:
    with pytest.raises(InvalidName, match=why):
        validate_name(raw)


def test_name_error_alias_and_non_text() -> None:
    assert NameError_ is InvalidName and issubclass(InvalidName, ValueError)
    with pytest.raises(InvalidName, match="text"):
        validate_name(None)


@given(st.text(max_size=120))
def test_any_text_is_refused_or_stored_clean(raw: str) -> None:
    try:
        name = validate_name(raw)
    except InvalidName as exc:
        assert str(exc)
        return
    assert 0 < len(name) <= MAX_NAME_LENGTH and name == name.strip()
    assert unicodedata.is_normalized("NFC", name)
    assert not any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") for c in name)
    assert "/" not in name and "\\" not in name and name not in (".", "..")
    assert validate_name(name) == name  # stored names pass again unchanged


def test_name_key_ignores_case() -> None:
    assert name_key("ZOË 李") == name_key("zoë 李") == name_key("Zoe\u0308 李")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("Anna") != name_key("Ana")


# ---------------------------------------------------------------- basics
def test_add_examples_and_read_back_after_reopen(tmp_path: Path) -> None:
    data = tmp_path / "data"
    v = vectors(1, 3)
    with Gallery.in_dir(data) as g:
        added = g.add_examples("Zoë 李", patches(1, 3), v, "dlib-resnet", "webcam")
        assert added.new_person and added.name == "Zoë 李" and len(added.example_ids) == 3
    assert (data / FILENAME).is_file()
    with Gallery.in_dir(data) as g:
        (info,) = g.people()
        assert (info.name, info.examples, info.thumbnail) == ("Zoë 李", 3, added.example_ids[0])
        stored = g.vectors("dlib-resnet")
        np.testing.assert_array_equal(stored.matrix, v)  # bit-exact float32
        assert stored.labels.tolist() == [added.person] * 3
        assert stored.example_ids.tolist() == added.example_ids
        assert stored.names == {added.person: "Zoë 李"}
        assert g.vectors("facenet").matrix.shape == (0, 0)
        crop = g.crop(added.example_ids[1])
        assert crop == patches(1, 3)[1].jpeg
        assert decode_patch(next(g.examples()).patch).shape[2] == 3
        assert g.embedders() == {"dlib-resnet": 3}
        assert g.schema_version == len(MIGRATIONS)
        assert g.integrity_check() == "ok"


def test_same_name_other_case_is_the_same_person(gallery: Gallery) -> None:
    first = gallery.add_examples("Anna Lee", patches(1, 2), vectors(1, 2), "dlib-resnet",
                                 "upload")
    second = gallery.add_examples("  ANNA   lee ", patches(2, 1), vectors(2, 1),
                                  "dlib-resnet", "webcam")
    assert second.person == first.person and not second.new_person
    assert second.name == "Anna Lee"  # the first spelling is kept
    assert [(p.name, p.examples) for p in gallery.people()] == [("Anna Lee", 3)]
    assert gallery.add_person("anna LEE") == first.person


def test_rename_and_case_change(gallery: Gallery) -> None:
    gallery.add_examples("anna", patches(1, 1), vectors(1, 1), "dlib-resnet", "upload")
    assert gallery.rename("ANNA", "Anna") == "Anna"  # own name in another case: fine
    assert gallery.rename("anna", "Zoë 李") == "Zoë 李"
    assert [p.name for p in gallery.people()] == ["Zoë 李"]
    assert gallery.person("zoë 李").examples == 1


def test_delete_and_clear(gallery: Gallery) -> None:
    gallery.add_examples("A", patches(1, 2), vectors(1, 2), "dlib-resnet", "upload")
    gallery.add_examples("B", patches(2, 3), vectors(2, 3), "dlib-resnet", "upload")
    assert gallery.delete("b") == 3
    assert [p.name for p in gallery.people()] == ["A"]
    assert gallery.vectors("dlib-resnet").matrix.shape == (2, DIM)
    assert gallery.clear() == 1
    assert gallery.people() == [] and gallery.embedders() == {}
    # Ids are never reused: a cached thumbnail id cannot come to show someone else.
    again = gallery.add_examples("A", patches(3, 1), vectors(3, 1), "dlib-resnet", "upload")
    assert again.example_ids[0] > 5


def test_remove_single_examples(gallery: Gallery) -> None:
    added = gallery.add_examples("A", patches(1, 3), vectors(1, 3), "dlib-resnet", "upload")
    assert gallery.remove_examples([added.example_ids[0], 999]) == 1
    assert gallery.person("a").examples == 2
    assert gallery.vectors("dlib-resnet").example_ids.tolist() == added.example_ids[1:]


def test_deleted_faces_are_gone_from_the_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret = patches(7, 1)
    with Gallery.in_dir(data) as g:
        g.add_examples("Keep", patches(1, 1), vectors(1, 1), "dlib-resnet", "upload")
        g.add_examples("Forget", secret, vectors(7, 1), "dlib-resnet", "upload")
        # From the entropy-coded end: a JPEG's header tables are the same in every file.
        probe = secret[0].jpeg[-300:-236]
        assert all(probe not in p.jpeg for p in patches(1, 1))

        def on_disk() -> bool:
            return any(
                probe in path.read_bytes() for path in data.iterdir() if path.is_file()
            )

        assert on_disk()
        g.delete("Forget")
        assert not on_disk()  # secure_delete + WAL checkpoint: not in the db, not in the WAL


def test_missing_vectors_and_set_embeddings(gallery: Gallery) -> None:
    added = gallery.add_examples("A", patches(1, 3), vectors(1, 3), "dlib-resnet", "upload")
    assert gallery.count_missing("facenet") == 3 and gallery.count_missing("dlib-resnet") == 0
    todo = [e.id for e in gallery.examples(missing_for="facenet", batch=2)]
    assert todo == added.example_ids
    new = vectors(9, 3, dim=512)
    written = gallery.set_embeddings("facenet", dict(zip(todo, new, strict=True)) | {999: new[0]})
    assert written == 3  # the unknown example id is skipped
    np.testing.assert_array_equal(gallery.vectors("facenet").matrix, new)
    assert gallery.count_missing("facenet") == 0
    # Replacing every vector of an embedder may change their size (a new model) ...
    assert gallery.set_embeddings("facenet", dict(zip(todo, vectors(3, 3, 64), strict=True)))
    # ... replacing only some may not.
    with pytest.raises(GalleryError, match="64-D"):
        gallery.set_embeddings("facenet", {todo[0]: vectors(4, 1, 32)[0]})


# ---------------------------------------------------------------- refused changes
def test_every_refused_change_leaves_the_file_identical(
    tmp_path: Path, gallery: Gallery
) -> None:
    g = gallery
    g.add_examples("Anna", patches(1, 2), vectors(1, 2), "dlib-resnet", "upload")
    g.add_examples("Bob", patches(2, 2), vectors(2, 2), "dlib-resnet", "webcam")
    before = dump_any(g)
    bad_archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad_archive, "w") as z:
        z.writestr("manifest.json", '{"format": "facelive-gallery", "version": 1, "people": '
                   '[{"name": "ok", "examples": []}, {"name": "a/b", "examples": []}]}')
    refused = [
        (InvalidName, lambda: g.add_examples("", patches(3, 1), vectors(3, 1), "d", "upload")),
        (InvalidName, lambda: g.add_examples("x\u202e", patches(3, 1), None, "d", "upload")),
        (InvalidName, lambda: g.add_person("a" * 101)),
        (PersonExists, lambda: g.rename("anna", "BOB")),
        (PersonExists, lambda: g.rename("Bob", "anna")),
        (PersonNotFound, lambda: g.rename("Carl", "Dora")),
        (InvalidName, lambda: g.rename("Anna", "An/na")),
        (PersonNotFound, lambda: g.delete("Carl")),
        (PersonNotFound, lambda: g.delete("")),
        (GalleryError, lambda: g.add_examples("Carl", patches(3, 1), vectors(3, 1, 64),
                                              "dlib-resnet", "upload")),
        (GalleryError, lambda: g.add_examples("Carl", patches(3, 1), vectors(3, 1),
                                              "dlib-resnet", "telepathy")),
        (GalleryError, lambda: g.add_examples("Carl", patches(3, 2), vectors(3, 1),
                                              "dlib-resnet", "upload")),
        (GalleryError, lambda: g.add_examples("Carl", patches(3, 1),
                                              np.full((1, DIM), np.nan), "dlib-resnet",
                                              "upload")),
        (GalleryError, lambda: g.set_embeddings("dlib-resnet", {1: vectors(3, 1, 16)[0]})),
        (GalleryError, lambda: import_archive(g, bad_archive)),
        (GalleryError, lambda: import_archive(g, tmp_path / "missing.zip")),
    ]
    for error, change in refused:
        with pytest.raises(error):
            change()
        assert dump_any(g) == before


def test_an_error_mid_transaction_rolls_everything_back(
    gallery: Gallery, monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery.add_examples("Anna", patches(1, 1), vectors(1, 1), "dlib-resnet", "upload")
    before = dump_any(gallery)
    backend = type(gallery)
    real = backend._insert_example
    calls = []

    def fail_on_third(*args):  # the third insert fails, after the person and two examples
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return real(*args)

    monkeypatch.setattr(backend, "_insert_example", staticmethod(fail_on_third))
    with pytest.raises(OSError):
        gallery.add_examples("Carl", patches(2, 4), vectors(2, 4), "dlib-resnet", "upload")
    assert dump_any(gallery) == before
    monkeypatch.undo()
    assert gallery.add_examples("Carl", patches(2, 4), vectors(2, 4), "dlib-resnet",
                                "upload").new_person


def test_read_only_gallery_refuses_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Gallery.in_dir(data) as g:
        g.add_examples("Anna", patches(1, 1), vectors(1, 1), "dlib-resnet", "upload")
    before = dump(data / FILENAME)
    with Gallery.in_dir(data, read_only=True) as g:
        assert [p.name for p in g.people()] == ["Anna"]
        with pytest.raises(GalleryError, match="read-only"):
            g.add_person("Bob")
        with pytest.raises(GalleryError, match="read-only"):
            g.delete("Anna")
    assert dump(data / FILENAME) == before
    with pytest.raises(GalleryError, match="no gallery"):
        Gallery.in_dir(tmp_path / "elsewhere", read_only=True)
    assert not (tmp_path / "elsewhere").exists()


# An unwritable file or folder (as root too): tests/hardening/test_faults.py.


# ---------------------------------------------------------------- opening strange files
def test_garbage_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    content = b"these are my holiday notes, not a database\n" * 100
    path.write_bytes(content)
    with pytest.raises(GalleryCorrupt, match="not a FaceLive gallery"):
        Gallery(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILENAME]


def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('soup')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(GalleryCorrupt, match="not a FaceLive gallery.*recipes"):
        Gallery(path)
    assert path.read_bytes() == before


def test_corrupt_gallery_gives_a_clear_error_and_is_not_recreated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Gallery.in_dir(data) as g:
        for i in range(6):
            g.add_examples(f"P{i}", patches(i, 3), vectors(i, 3), "dlib-resnet", "upload")
    path = data / FILENAME
    raw = bytearray(path.read_bytes())
    page = 4096
    # Smash the b-tree pages after the schema page with garbage.
    raw[page : len(raw) - page] = os.urandom(len(raw) - 2 * page)
    path.write_bytes(bytes(raw))
    damaged = path.read_bytes()
    with pytest.raises(GalleryCorrupt, match="corrupt|not a FaceLive"):
        with Gallery.in_dir(data) as g:
            g.people()
            g.vectors("dlib-resnet")
    assert path.read_bytes() == damaged


def test_empty_file_is_initialised(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    path.touch()  # e.g. a crash right after the file was created
    with Gallery(path) as g:
        assert g.people() == [] and g.schema_version == len(MIGRATIONS)


# ---------------------------------------------------------------- migrations
def _v2_add_note(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE people ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    conn.execute("UPDATE people SET note = 'migrated'")


def _v2_broken(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE people ADD COLUMN note TEXT")
    conn.execute("THIS IS NOT SQL")


def test_new_file_gets_the_latest_schema_and_our_id(tmp_path: Path) -> None:
    Gallery(tmp_path / FILENAME).close()
    _, version, app = dump(tmp_path / FILENAME)
    assert version == len(MIGRATIONS) and app == APPLICATION_ID


def test_migration_upgrades_an_existing_file_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    with Gallery(path) as g:
        g.add_examples("Anna", patches(1, 2), vectors(1, 2), "dlib-resnet", "upload")
    with Gallery(path, migrations=(*MIGRATIONS, _v2_add_note)) as g:
        assert g.schema_version == len(MIGRATIONS) + 1
        assert [(p.name, p.examples) for p in g.people()] == [("Anna", 2)]
        note = g._conn.execute("SELECT note FROM people").fetchone()[0]
        assert note == "migrated"
    # The upgraded file is now too new for the code without that migration.
    with pytest.raises(GalleryError, match="newer FaceLive"):
        Gallery(path)


def test_failed_migration_leaves_the_file_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    with Gallery(path) as g:
        g.add_examples("Anna", patches(1, 2), vectors(1, 2), "dlib-resnet", "upload")
    before = dump(path)
    with pytest.raises(GalleryError):
        Gallery(path, migrations=(*MIGRATIONS, _v2_broken))
    assert dump(path) == before
    with Gallery(path) as g:  # still fine for the current code
        assert g.person("anna").examples == 2


def test_file_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    Gallery(path, migrations=(*MIGRATIONS, _v2_add_note)).close()
    before = path.read_bytes()
    with pytest.raises(GalleryError, match=f"schema {len(MIGRATIONS) + 1}"):
        Gallery(path)
    assert path.read_bytes() == before


def test_read_only_open_refuses_an_old_schema(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    Gallery(path).close()
    with pytest.raises(GalleryError, match="needs an upgrade"):
        Gallery(path, read_only=True, migrations=(*MIGRATIONS, _v2_add_note))


# ---------------------------------------------------------------- concurrency
def test_two_connections_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    first, second = Gallery(path), Gallery(path)
    errors: list[BaseException] = []

    def writer(g: Gallery, name: str, seed: int) -> None:
        try:
            for i in range(8):
                g.add_examples(name, patches(seed + i, 1), vectors(seed + i, 1),
                               "dlib-resnet", "upload")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(first, "A", 100)),
        threading.Thread(target=writer, args=(second, "B", 200)),
        threading.Thread(target=writer, args=(first, "C", 300)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [(p.name, p.examples) for p in first.people()] == [("A", 8), ("B", 8), ("C", 8)]
    assert second.changed_elsewhere() is True
    assert second.changed_elsewhere() is False
    second.add_person("D")
    assert first.changed_elsewhere() is True
    first.close()
    second.close()


# ---------------------------------------------------------------- export / import
def test_export_import_round_trip_and_merge(tmp_path: Path) -> None:
    source = Gallery(tmp_path / "a.sqlite3")
    source.add_examples("Zoë 李", patches(1, 2), vectors(1, 2), "dlib-resnet", "webcam")
    source.add_examples("Bob", patches(2, 1), vectors(2, 1), "dlib-resnet", "upload")
    source.set_embeddings("facenet", {1: vectors(5, 1, 512)[0]})
    archive = tmp_path / "out" / "gallery.zip"
    archive.parent.mkdir()
    assert export_gallery(source, archive) == 3
    assert [p.name for p in archive.parent.iterdir()] == ["gallery.zip"]  # no temp left

    target = Gallery(tmp_path / "b.sqlite3")
    target.add_examples("ZOË 李", patches(9, 1), vectors(9, 1), "dlib-resnet", "upload")
    report = import_archive(target, archive)
    assert (report.people_added, report.people_merged) == (1, 1)
    assert (report.examples_added, report.examples_skipped) == (3, 0)
    people = {p.name: p.examples for p in target.people()}
    assert people == {"ZOË 李": 3, "Bob": 1}  # merged into the existing spelling
    got = target.vectors("dlib-resnet")
    names = got.names
    by_name = {
        name: got.matrix[got.labels == pid] for pid, name in names.items()
    }
    np.testing.assert_array_equal(by_name["ZOË 李"][1:], vectors(1, 2))
    np.testing.assert_array_equal(by_name["Bob"], vectors(2, 1))
    assert target.vectors("facenet").matrix.shape == (1, 512)
    before = dump(target.path)
    again = import_archive(target, archive)  # idempotent
    assert (again.examples_added, again.examples_skipped) == (0, 3)
    assert dump(target.path)[0] == before[0]
    crops = {e.patch.jpeg for e in target.examples()}
    assert {e.patch.jpeg for e in source.examples()} <= crops
    source.close()
    target.close()


def test_import_refuses_newer_or_broken_archives(tmp_path: Path, gallery: Gallery) -> None:
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(newer, "w") as z:
        z.writestr("manifest.json", '{"format": "facelive-gallery", "version": 99, '
                   '"people": []}')
    with pytest.raises(GalleryError, match="newer FaceLive"):
        import_archive(gallery, newer)
    broken = tmp_path / "broken.zip"
    gallery.add_examples("Anna", patches(1, 2), vectors(1, 2), "dlib-resnet", "upload")
    export_gallery(gallery, broken)
    broken.write_bytes(broken.read_bytes()[:-200])  # truncated download
    with pytest.raises(GalleryError, match="export"):
        import_archive(gallery, broken)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(GalleryError, match="not a FaceLive gallery export"):
        import_archive(gallery, notes)
    assert gallery_module.FILENAME == FILENAME
