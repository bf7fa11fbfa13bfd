"""Fill locale/zh_Hans/LC_MESSAGES/django.po from locale/zh_Hans/translations.tsv, then compile.

Why: msgids are English (Django's convention); the Chinese UI text is kept in a reviewable
two-column table (English <TAB> 中文) so that translations survive `makemessages` runs.
Usage: python scripts/fill_translations.py   (after `manage.py makemessages -l zh_Hans ...`)
Exits non-zero and lists every msgid that has no translation.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
TABLE = ROOT / "locale" / "zh_Hans" / "translations.tsv"


def _as_msgid(text: str) -> str:
    # {% blocktranslate %} bodies appear in catalogues with %(name)s placeholders.
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", r"%(\1)s", text.replace("\\n", "\n"))


def load_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for number, line in enumerate(TABLE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        english, sep, chinese = line.partition("\t")
        if not sep:
            raise SystemExit(f"{TABLE.name}:{number}: expected 'English<TAB>中文'")
        table[_as_msgid(english)] = _as_msgid(chinese)
    return table


def main() -> int:
    table = load_table()
    po = polib.pofile(str(PO))
    po.metadata["Language"] = "zh_Hans"
    po.metadata["Content-Type"] = "text/plain; charset=UTF-8"
    po.metadata["Plural-Forms"] = "nplurals=1; plural=0;"
    missing = []
    for entry in po:
        if entry.obsolete:
            continue
        entry.flags = [flag for flag in entry.flags if flag != "fuzzy"]
        if entry.msgid_plural:
            text = table.get(entry.msgid)
            if text is None:
                entry.msgstr_plural = {0: ""}
                missing.append(entry.msgid)
                continue
            entry.msgstr_plural = {0: text}
        elif entry.msgid in table:
            entry.msgstr = table[entry.msgid]
        else:
            # Never ship msgmerge's fuzzy guess: it may carry other placeholders.
            entry.msgstr = ""
            missing.append(entry.msgid)
    po.save()
    po.save_as_mofile(str(PO.with_suffix(".mo")))
    for msgid in missing:
        print(f"untranslated: {msgid!r}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
