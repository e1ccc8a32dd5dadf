"""BACKUP_SEND_TO_ADMINS: the running app's scheduled backup reaches the admins as a document."""

from __future__ import annotations

import asyncio
import io
import tarfile

from spnbot.sandbox.stack import ADMIN_ID
from tests.e2e.conftest import Stack


async def test_a_scheduled_backup_is_sent_to_the_admins(stack: Stack) -> None:
    await stack.customer(8101)
    await stack.restart(backup_interval=3600, backup_send_to_admins=True)
    message = await stack.tg.wait_for_message(
        ADMIN_ID, predicate=lambda m: m.document_bytes is not None, timeout=30
    )
    with tarfile.open(fileobj=io.BytesIO(message.document_bytes), mode="r:gz") as archive:
        assert "manifest.json" in archive.getnames()
    backups = sorted((stack.data_dir / "backups").glob("spn-backup-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == message.document_bytes


async def test_backups_stay_home_unless_asked(stack: Stack) -> None:
    await stack.restart(backup_interval=3600)
    folder = stack.data_dir / "backups"
    for _ in range(200):  # the first scheduled backup runs at start
        if list(folder.glob("spn-backup-*")):
            break
        await asyncio.sleep(0.05)
    assert list(folder.glob("spn-backup-*"))
    assert all(m.document_bytes is None for m in stack.tg.messages(ADMIN_ID))
