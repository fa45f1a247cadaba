"""Every user-facing string is really translated in all 22 locales."""

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils.translation import to_locale

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|%[sdif]|\{\w*\}")
LANGUAGE_CODES = [code for code, _name in settings.LANGUAGES]


def _po_path(code):
    return ROOT / "locale" / to_locale(code) / "LC_MESSAGES" / "django.po"


def test_twenty_two_locales_three_right_to_left():
    assert len(LANGUAGE_CODES) == 22
    assert sorted(settings.LANGUAGES_BIDI) == ["ar", "fa", "he"]


@pytest.mark.parametrize("code", LANGUAGE_CODES)
def test_catalogue_is_complete_and_consistent(code):
    path = _po_path(code)
    assert path.exists(), f"missing catalogue {path.relative_to(ROOT)}"
    catalogue = polib.pofile(str(path))
    problems = []
    for entry in catalogue:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.msgid!r}")
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if not all(t.strip() for t in translations):
            problems.append(f"untranslated: {entry.msgid!r}")
            continue
        expected = Counter(PLACEHOLDER.findall(entry.msgid))
        for translation in translations:
            if Counter(PLACEHOLDER.findall(translation)) != expected and not entry.msgid_plural:
                problems.append(f"placeholders differ: {entry.msgid!r} -> {translation!r}")
            elif entry.msgid_plural and set(PLACEHOLDER.findall(translation)) - set(
                PLACEHOLDER.findall(entry.msgid + entry.msgid_plural)
            ):
                problems.append(f"unknown placeholder: {entry.msgid!r} -> {translation!r}")
    assert not problems, f"{code}: " + "; ".join(problems[:20])


@pytest.mark.parametrize("code", LANGUAGE_CODES)
def test_compiled_catalogue_matches_its_source(code):
    path = _po_path(code)
    mo_path = path.with_suffix(".mo")
    assert mo_path.exists(), "run `make messages`"
    source = {
        (e.msgctxt, e.msgid): e.msgstr or dict(e.msgstr_plural) for e in polib.pofile(str(path)) if not e.obsolete
    }
    compiled = {(e.msgctxt, e.msgid): e.msgstr or dict(e.msgstr_plural) for e in polib.mofile(str(mo_path))}
    compiled = {k: ({int(i): s for i, s in v.items()} if isinstance(v, dict) else v) for k, v in compiled.items()}
    source = {k: ({int(i): s for i, s in v.items()} if isinstance(v, dict) else v) for k, v in source.items()}
    assert compiled == source, "the .mo is stale: run `make messages`"


# CI installs gettext (.ci/run), so there this check always runs; a developer machine without
# the gettext tools skips only this extraction check, not the catalogue checks above.
@pytest.mark.skipif(
    shutil.which("xgettext") is None and not os.environ.get("CI"), reason="gettext tools are not installed"
)
def test_every_string_in_the_code_is_in_the_catalogues(tmp_path):
    """Extract strings from the code as `make messages` does and find each in every catalogue."""
    work = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        work,
        ignore=shutil.ignore_patterns(".*", "node_modules", "staticfiles", "var", "locale", "tests", "bench"),
    )
    (work / "locale").mkdir()
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--locale", "en", "--no-location", "--no-wrap"],
        cwd=work,
        check=True,
        capture_output=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "loyalnest.settings.test"},
        timeout=300,
    )
    extracted = {(e.msgctxt, e.msgid) for e in polib.pofile(str(work / "locale" / "en" / "LC_MESSAGES" / "django.po"))}
    for code in LANGUAGE_CODES:
        known = {(e.msgctxt, e.msgid) for e in polib.pofile(str(_po_path(code))) if not e.obsolete}
        missing = sorted(msgid for _ctx, msgid in extracted - known)
        assert not missing, (
            f"{code} lacks {len(missing)} strings, e.g. {missing[:5]}: run `make messages` and translate"
        )
