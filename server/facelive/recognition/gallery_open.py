"""Which gallery a process opens: the SQLite file in the data dir (the default: one machine,
no database server), or PostgreSQL when FACELIVE_DATABASE_URL is set (several workers).

Both backends have the same methods, records and errors (gallery.Gallery, gallery_pg.PgGallery);
callers open one here and never need to know which.
"""

from __future__ import annotations

from typing import Any

from facelive.settings import Settings


def open_gallery(
    settings: Settings, *, read_only: bool = False, create: bool = True, listen: bool = False
) -> Any:
    """The gallery `settings` name. listen: hear other processes' commits (a long-lived
    reader such as the server; see changed_elsewhere). SQLite always notices them."""
    if settings.database_url:
        from facelive.recognition.gallery_pg import PgGallery

        gallery = PgGallery(settings.database_url, read_only=read_only, create=create)
        if listen:
            try:
                gallery.listen()
            except BaseException:
                gallery.close()
                raise
        return gallery
    from facelive.recognition.gallery import Gallery

    return Gallery.in_dir(settings.data_dir, read_only=read_only, create=create)


def gallery_exists(settings: Settings) -> bool:
    """Whether there is a gallery yet (commands that only read do not create one)."""
    if settings.database_url:
        from facelive.recognition.gallery_pg import PgGallery
        from facelive.recognition.gallery_pg_db import NoGallery

        try:
            PgGallery(settings.database_url, read_only=True).close()
        except NoGallery:
            return False
        return True
    from facelive.recognition.gallery import FILENAME

    return (settings.data_dir / FILENAME).exists()
