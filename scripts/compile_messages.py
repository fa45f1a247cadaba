"""Compile every locale/*/LC_MESSAGES/django.po to .mo with polib (pure Python).

The .mo files are committed so `make run` needs no gettext tools; tests/core/test_i18n.py
fails when a .mo is older than its .po. Run `make messages` after changing strings.
"""

import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    compiled = 0
    for po_path in sorted(ROOT.glob("locale/*/LC_MESSAGES/*.po")):
        catalogue = polib.pofile(str(po_path))
        catalogue.save_as_mofile(str(po_path.with_suffix(".mo")))
        compiled += 1
    print(f"compiled {compiled} catalogues")
    return 0


if __name__ == "__main__":
    sys.exit(main())
