"""One vocabulary (docs/glossary.ja.md): no screen or doc uses a retired term,
and English text uses English punctuation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.ja.md"

# What a person reads: the console, the home page, both apps' words and pages,
# the verifier's words (shown by the app and the CLI), the profiles' labels,
# the paper card, and every doc.
SCREENS = [
    *sorted((ROOT / "issuer/web/console/templates").rglob("*.html")),
    ROOT / "issuer/web/console/i18n.py",
    *sorted((ROOT / "issuer/web/templates").glob("*.html")),
    *(
        ROOT / "webapps" / app / f
        for app in ("wallet", "verify")
        for f in ("index.html", "i18n.js")
    ),
    ROOT / "webapps/verify/roster.js",
    ROOT / "verifier/reasons.py",
    *sorted((ROOT / "schemas/profiles").glob("*.json")),
    ROOT / "issuer/domain/paper.py",
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p != GLOSSARY),
]
# A noun retired while its verb stays: 取り消し is retired, 取り消した is not.
VERB_ENDINGS = "たてまなよれ"


def retired() -> list[str]:
    terms: list[str] = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("概念 / concept", "---"):
            continue
        terms += [t.strip() for t in cells[3].split(" / ") if t.strip()]
    return terms


def test_the_glossary_retires_what_the_issue_named() -> None:
    terms = retired()
    for word in ("確認コード", "二地域居住者登録証", "プレミアム会員", "信頼の起点", "鍵の指紋"):
        assert word in terms


@pytest.mark.parametrize("path", SCREENS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_retired_term(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = []
    for term in retired():
        for m in re.finditer(re.escape(term), text):
            after = text[m.end() : m.end() + 1]
            if term.endswith("し") and after and after in VERB_ENDINGS:
                continue
            line = text.count("\n", 0, m.start()) + 1
            found.append(f"{path.relative_to(ROOT)}:{line}: {term}")
    assert not found, "retired by docs/glossary.ja.md:\n" + "\n".join(found)


JA_PUNCT = re.compile("[、。（）「」]")


def _english_strings() -> dict[str, str]:
    from dualres.issuer.web.console.i18n import WORDS
    from dualres.verifier.cli import WARNINGS
    from dualres.verifier.reasons import MESSAGES

    out = {f"console:{k}": en for k, (_, en) in WORDS.items()}
    out |= {f"reasons:{k}": en for k, (_, en) in MESSAGES.items()}
    out |= {f"warnings:{k}": en for k, (_, en) in WARNINGS.items()}
    for app, start in (("verify", "  en: {"), ("wallet", "const en = {")):
        text = (ROOT / "webapps" / app / "i18n.js").read_text(encoding="utf-8")
        block = text[text.index(start) :]
        block = block[: block.index("\n}")]
        for m in re.finditer(r"^\s+(\w+): ('(?:[^'\\]|\\.)*')", block, re.M):
            out[f"{app}:{m.group(1)}"] = m.group(2)
    for path in sorted((ROOT / "schemas/profiles").glob("*.json")):
        out[f"profile:{path.stem}"] = json.loads(path.read_text(encoding="utf-8"))["label"]["en"]
    return out


def test_english_uses_english_punctuation() -> None:
    strings = _english_strings()
    assert len(strings) > 150
    bad = {k: v for k, v in strings.items() if JA_PUNCT.search(v)}
    assert not bad, bad
