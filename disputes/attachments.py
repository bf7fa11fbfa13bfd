"""Checking uploaded evidence by its content: the first bytes decide the type, never the file
name or the browser's Content-Type (both are typed by the uploader)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_FILES = 5


@dataclass(frozen=True)
class FileType:
    content_type: str
    extension: str


def max_bytes() -> int:
    return int(getattr(settings, "DISPUTE_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def max_files() -> int:
    return int(getattr(settings, "DISPUTE_ATTACHMENTS_PER_STATEMENT", DEFAULT_MAX_FILES))


def sniff(head: bytes) -> FileType | None:
    """The type of a file from its first bytes: PNG, JPEG, GIF, WebP images or PDF."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType("image/png", "png")
    if head.startswith(b"\xff\xd8\xff"):
        return FileType("image/jpeg", "jpg")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return FileType("image/gif", "gif")
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return FileType("image/webp", "webp")
    if head.startswith(b"%PDF-"):
        return FileType("application/pdf", "pdf")
    return None


def check_upload(upload: UploadedFile) -> tuple[FileType | None, str]:
    """(type, "") for an acceptable file, (None, message) otherwise."""
    name = upload.name or _("(no name)")
    size = upload.size or 0
    if size == 0:
        return None, _("“%(name)s” is empty.") % {"name": name}
    if size > max_bytes():
        return None, _("“%(name)s” is %(size)s; at most %(max)s are allowed.") % {
            "name": name,
            "size": filesizeformat(size),
            "max": filesizeformat(max_bytes()),
        }
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    kind = sniff(head)
    if kind is None:
        return None, _("“%(name)s” is not an image (PNG, JPEG, GIF, WebP) or a PDF document.") % {
            "name": name
        }
    return kind, ""
