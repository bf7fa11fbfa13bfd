"""Evidence files: type decided by content (magic bytes), size and count limits, stored with
Django's storage API; a refused file leaves no row and no file behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import Customer, User
from disputes import services
from disputes.attachments import sniff
from disputes.models import Dispute, DisputeAttachment, DisputeStatement
from tests.disputes.conftest import PDF, PNG, pdf, png


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (PDF, "application/pdf"),
        (b"MZ\x90\x00", None),
        (b"<html><script>", None),
        (b"PK\x03\x04", None),
    ],
)
def test_the_type_comes_from_the_first_bytes(head: bytes, expected: str | None) -> None:
    kind = sniff(head)
    assert (kind.content_type if kind else None) == expected


def test_files_are_stored_through_the_storage_api(
    claimant: User, contested: Customer, committee: list, settings: Any
) -> None:
    case = services.dispute_file(
        actor=claimant,
        customer=contested,
        kind="first_contact",
        statement="见附件",
        attachments=[png("名片.png"), pdf()],
    )
    rows = list(DisputeAttachment.objects.filter(dispute=case).order_by("id"))
    assert [(r.original_name, r.content_type) for r in rows] == [
        ("名片.png", "image/png"),
        ("contract.pdf", "application/pdf"),
    ]
    for row in rows:
        # The stored name never comes from the uploader.
        assert row.file.name.startswith(f"disputes/{case.pk}/")
        assert "名片" not in row.file.name
        assert row.file.storage.exists(row.file.name)
        assert len(row.sha256) == 64


def test_a_file_with_a_lying_name_is_refused(claimant: User, contested: Customer) -> None:
    fake = SimpleUploadedFile("photo.png", b"MZ\x90\x00 this is an exe", content_type="image/png")
    with pytest.raises(services.DisputeInvalid) as error:
        services.dispute_file(
            actor=claimant,
            customer=contested,
            kind="first_contact",
            statement="见附件",
            attachments=[fake],
        )
    assert "photo.png" in error.value.errors["attachments"]
    assert "不是图片" in error.value.errors["attachments"]
    assert not Dispute.objects.exists() and not DisputeStatement.objects.exists()


def test_a_too_large_file_is_refused(claimant: User, contested: Customer, settings: Any) -> None:
    settings.DISPUTE_ATTACHMENT_MAX_BYTES = 1024
    with pytest.raises(services.DisputeInvalid) as error:
        services.dispute_file(
            actor=claimant,
            customer=contested,
            kind="first_contact",
            statement="见附件",
            attachments=[png(size=2048)],
        )
    assert "最多" in error.value.errors["attachments"]
    assert not Dispute.objects.exists()


def test_too_many_files_are_refused(claimant: User, contested: Customer, settings: Any) -> None:
    settings.DISPUTE_ATTACHMENTS_PER_STATEMENT = 2
    with pytest.raises(services.DisputeInvalid, match="最多"):
        services.dispute_file(
            actor=claimant,
            customer=contested,
            kind="first_contact",
            statement="见附件",
            attachments=[png("a.png"), png("b.png"), png("c.png")],
        )


def test_a_failure_after_the_files_were_written_removes_them(
    first_contact_case: Dispute, claimant: User, settings: Any, monkeypatch: Any
) -> None:
    from disputes import services as module

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("boom")

    original = module._store_attachments

    def store_then_fail(**kwargs: Any) -> None:
        original(**kwargs)
        broken()

    monkeypatch.setattr(module, "_store_attachments", store_then_fail)
    with pytest.raises(RuntimeError):
        services.dispute_add_statement(
            actor=claimant, dispute=first_contact_case, text="补充", attachments=[png()]
        )
    media = Path(settings.MEDIA_ROOT) / "disputes" / str(first_contact_case.pk)
    assert not media.exists() or not any(media.iterdir())
    assert first_contact_case.statements.count() == 1
