"""Bounded work for uploads: a file's size and, for a zip container (.xlsx), the size of what it expands to.

A 266 KB .xlsx can expand to 77 MB of sheet XML (a "zip bomb"); a limit on the uploaded bytes alone does not
bound the work. `check_zip` reads the archive's directory and refuses, before any parser opens the file:
too many members, a member whose declared uncompressed size is over its limit, a declared total over the
limit, and a member that expands more than `max_ratio` times (once it is over `ratio_from_bytes`: small
files compress well and are harmless). It then inflates every member in chunks, counting, so a directory
that lies about the sizes is caught too (without ever holding more than a chunk).

Each refusal is an `InputError` FILE_TOO_LARGE with HTTP 413 and a sentence saying which limit; the
caller's own rows/questions limits (TOO_MANY_ROWS, TOO_MANY_QUESTIONS: 422) come after, while it streams.

`body_refusal` is the door for request bodies: a body larger than its limit (413 REQUEST_TOO_LARGE) or a
multipart body without a boundary (400) is refused from its headers, before anything reads it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

from django.conf import settings

from casemsg.core import errors
from casemsg.core.errors import InputError

__all__ = ["body_refusal", "check_size", "check_zip", "size_text"]

_CHUNK = 1 << 20


def size_text(n: int) -> str:
    """1048576 -> '1 MB', 5242880 -> '5 MB', 2500000 -> '2.4 MB' (binary megabytes, as file managers show)."""
    mb = n / (1 << 20)
    if mb >= 1:
        return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, round(n / 1024))} KB"


def too_large(message: str) -> InputError:
    return InputError(errors.FILE_TOO_LARGE, message, 413)


def check_size(size: int | None, limit: int, what: str = "The file") -> None:
    """Refuse (413 FILE_TOO_LARGE) a file of more than `limit` bytes."""
    if size is not None and size > limit:
        raise too_large(f"{what} is {size_text(size)}; the limit is {size_text(limit)}.")


def check_zip(
    data: bytes,
    *,
    what: str,
    max_members: int,
    max_member_bytes: int | Callable[[str], int],
    max_total_bytes: int,
    max_ratio: float,
    ratio_from_bytes: int = 1 << 20,
) -> None:
    """Refuse (413 FILE_TOO_LARGE) a zip archive that expands beyond the limits; see the module docstring.

    `max_member_bytes` is one limit, or a function of the member's name (a sheet may be larger than the
    styles). Raises zipfile.BadZipFile (or another zipfile error) for a file that is not a readable zip:
    the caller reports that in its own words."""

    def limit_of(name: str) -> int:
        return max_member_bytes(name) if callable(max_member_bytes) else max_member_bytes

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise too_large(f"{what} holds {len(members):,} files; the limit is {max_members:,}.")
        declared = 0
        for info in members:
            _check_member(
                what, info.filename, info.file_size, info.compress_size, limit_of, max_ratio, ratio_from_bytes
            )
            declared += info.file_size
            if declared > max_total_bytes:
                raise too_large(
                    f"{what} expands to more than {size_text(max_total_bytes)} once unzipped; "
                    f"the limit is {size_text(max_total_bytes)}."
                )
        # The directory may lie: inflate each member, chunk by chunk, and count what really comes out.
        actual_total = 0
        for info in members:
            actual = 0
            with archive.open(info) as member:
                while chunk := member.read(_CHUNK):
                    actual += len(chunk)
                    actual_total += len(chunk)
                    _check_member(
                        what, info.filename, actual, info.compress_size, limit_of, max_ratio, ratio_from_bytes
                    )
                    if actual_total > max_total_bytes:
                        raise too_large(
                            f"{what} expands to more than {size_text(max_total_bytes)} once unzipped; "
                            f"the limit is {size_text(max_total_bytes)}."
                        )


def _check_member(
    what: str,
    name: str,
    size: int,
    compressed: int,
    limit_of: Callable[[str], int],
    max_ratio: float,
    ratio_from_bytes: int,
) -> None:
    limit = limit_of(name)
    if size > limit:
        raise too_large(
            f"{what}: its part {name} expands to more than {size_text(limit)} once unzipped "
            f"(the limit for it is {size_text(limit)})."
        )
    if size > ratio_from_bytes and size > max_ratio * max(compressed, 1):
        raise too_large(
            f"{what}: its part {name} expands more than {max_ratio:.0f} times once unzipped "
            f"({size_text(compressed)} to over {size_text(size)}); a spreadsheet does not."
        )


# --- request bodies --------------------------------------------------------------------------------
def body_refusal(
    content_type: str, content_params: dict[str, str], content_length: str | None
) -> tuple[int, str, str] | None:
    """Why a request's body is refused before anything reads it, as (HTTP status, code, sentence), or None.

    A multipart/form-data body (a file upload) may be at most `CASEMSG_MAX_UPLOAD_BYTES` and needs a
    boundary; any other body at most `DATA_UPLOAD_MAX_MEMORY_SIZE` (Django's own limit, enforced here
    before Django would answer it with an HTML page)."""
    from_header = (content_length or "").strip()
    length = int(from_header) if from_header.isdigit() else 0
    if content_type == "multipart/form-data":
        limit = int(settings.CASEMSG_MAX_UPLOAD_BYTES)
        if not content_params.get("boundary"):
            return 400, errors.HTTP_ERROR, "A multipart/form-data body needs a boundary in its Content-Type header."
        what = "A file upload (multipart/form-data)"
    else:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        what = "A request body"
    if limit is not None and length > limit:
        return (
            413,
            errors.REQUEST_TOO_LARGE,
            f"{what} may be at most {size_text(limit)}; this one is {size_text(length)}.",
        )
    return None
