"""Every job dedup key in spnbot/ is accounted for: done jobs are pruned, so none may rely on
an old done job still existing to stop a repeat.

A key is safe when whatever enqueues it can only happen once (a compare-and-set on a row that
is never pruned, a unique ledger row, a job that is done for good) within far less than the
retention period, or when a sent mark guards it. A new key fails this test until it is added
here with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

SPNBOT = Path(__file__).resolve().parents[2] / "spnbot"

# prefix -> what makes a second enqueue impossible once the job is gone
GUARDS = {
    "admin:paid:": "payment pending→paid compare-and-set; payments are never pruned",
    "admin:mismatch:": "payment →mismatch compare-and-set",
    "notify:failed:": "payment pending→failed compare-and-set",
    "sync:grant:": "written with its grant, unique per (kind, source); grants are never pruned",
    "notify:grant:": "written as its panel-sync job is finished; a done job never runs again",
    "notify:qr:": "written as its panel-sync job is finished; a done job never runs again",
    "notify:delayed:": "the panel sync's first attempt only; attempts only grow",
    "broadcast:": "written with its new broadcast row; job/broadcast ids are never reused",
    "broadcast:{stage}": "broadcast cursor/status compare-and-set",
    "admin:jobfail:": "a job gives up once (failed jobs are kept); ids are never reused",
    "admin:backup:": "a backup file name holds its UTC time: each file is announced once",
    "remind:": "sent_marks row, kept until the reminder's window has closed",
    "sync:drift:": "an absolute push of our own expiry: should it run again, it changes nothing",
    "admin:drift:": "the day and the findings' fingerprint: one digest a day for the same drift",
    "panel:": "its panel_deliveries row, written first; kept 7 days, the panel retries for minutes",
}
# Keys built in a variable first: (file, variable) -> the prefix the variable holds. Reminder
# keys come from reminders.reminder_key, shared by the bot's scan and the panel's webhooks.
INDIRECT = {
    ("services/reminders.py", "key"): "remind:",
    ("services/panel_events.py", "key"): "remind:",
}

LITERAL = re.compile(r'dedup_key=f"([a-z:]+)\{[^}]*\}(:\{stage\})?')
VARIABLE = re.compile(r"dedup_key=([a-z_]+)(?![a-z_\"])")
ASSIGNED = re.compile(r'\b([a-z_]+) = f"([a-z]+:)')


def _reminder_prefix() -> str:
    source = (SPNBOT / "services" / "reminders.py").read_text()
    found = re.search(r'def reminder_key\(.*?\n\s+return f"([a-z]+:)', source, flags=re.S)
    assert found, "reminders.reminder_key no longer builds the key it did"
    return found.group(1)


REMINDER_PREFIX = _reminder_prefix()


def _sites() -> list[tuple[str, str]]:
    found = []
    for path in sorted(SPNBOT.rglob("*.py")):
        rel = path.relative_to(SPNBOT).as_posix()
        if rel.startswith("store/migrations/") or rel == "store/jobs.py":
            continue  # the outbox itself passes keys through; it builds none
        source = path.read_text()
        for match in LITERAL.finditer(source):
            found.append((rel, match.group(1) + ("{stage}" if match.group(2) else "")))
        for match in VARIABLE.finditer(source):
            name = match.group(1)
            assert (rel, name) in INDIRECT, f"{rel}: dedup_key={name} is not accounted for"
            prefixes = {p for var, p in ASSIGNED.findall(source) if var == name}
            if "reminder_key(" in source:
                prefixes.add(REMINDER_PREFIX)
            assert prefixes == {INDIRECT[(rel, name)]}, (rel, name, prefixes)
            found.append((rel, INDIRECT[(rel, name)]))
        plain = source.count("dedup_key=") - len(LITERAL.findall(source))
        plain -= len(VARIABLE.findall(source))
        assert plain == 0, f"{rel}: a dedup_key this test cannot read"
    return found


def test_every_dedup_key_has_a_guard_that_outlives_its_job() -> None:
    sites = _sites()
    unknown = [(rel, prefix) for rel, prefix in sites if prefix not in GUARDS]
    assert not unknown, f"classify these dedup keys in {__file__}: {unknown}"
    assert {prefix for _, prefix in sites} == set(GUARDS), "a listed key no longer exists"


def test_reminders_are_guarded_by_sent_marks() -> None:
    source = (SPNBOT / "services" / "reminders.py").read_text()
    assert "marks.mark_new(" in source
