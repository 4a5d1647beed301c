"""Several registrations in one CLI wallet (issue 12): the person's own, basic and premium,
in several municipalities, and their children's.

Each registration is a *card*: a batch store of its own (wallet/batch.py) under
``cards/<ID>/``, with ``card.json`` saying what a person needs to pick it (municipality,
tier, whose, the prefecture) read from the credential itself.  IDs are small numbers
given in the order cards arrive; they never go into a QR.

Whose: the wallet's holder (本人) is the person of the first card stored; a card for
anyone else (a child whose credential the guardian collected) is shown with that
person's name.  That is said on the screen only: a presentation carries what the
verifier's profile asks for and nothing about who holds the phone.

A wallet with one card keeps it at the top (``issuer.json``, ``credentials/``: the
layout of wallet/batch.py); it moves under ``cards/1/`` when a second card arrives.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from dualres.verifier.wareki import japan_day, wareki
from dualres.verifier.wire import sdjwt
from dualres.verifier.wire.b64 import b64d
from dualres.wallet.batch import CREDENTIALS_DIR, ISSUER_FILE, LAST, BatchStore, write_private
from dualres.wallet.oid4vci import Batch

CARDS: Final = "cards"
CARD_FILE: Final = "card.json"
HOLDER_FILE: Final = "holder.json"
LEGACY_ID: Final = "1"


class CardError(Exception):
    """Which card: none, or several and none picked, or an unknown ID."""


@dataclass(frozen=True)
class Card:
    id: str
    store: BatchStore
    info: dict[str, Any]
    own: bool

    @property
    def lg_code(self) -> str:
        return str(self.info.get("lg_code", ""))

    def place(self, lang: str = "ja") -> str:
        name = f"{self.info.get('prefecture_name', '')}{self.info.get('name', '')}"
        return name or self.lg_code

    def tier(self, lang: str = "ja") -> str:
        t = self.info.get("tier")
        if lang == "en":
            return str(t)
        return {"premium": "プレミアム登録", "basic": "ベーシック登録"}.get(str(t), str(t))

    def whose(self, lang: str = "ja") -> str:
        if self.own:
            return "本人" if lang == "ja" else "you"
        p = self.info.get("person") or {}
        name = f"{p.get('family_name', '')} {p.get('given_name', '')}".strip()
        return f"{name}（お子さま）" if lang == "ja" else f"{name} (child)"

    def validity(self) -> tuple[date, date] | None:
        """From the earliest start to the latest end among the credentials still held."""
        spans = [_span(c.read_text()) for c in self.store.held()]
        good = [s for s in spans if s is not None]
        if not good:
            return None
        return min(s[0] for s in good), max(s[1] for s in good)

    def validity_text(self, lang: str = "ja") -> str:
        v = self.validity()
        if v is None:
            return "—"
        if lang == "en":
            return f"{wareki(v[0], 'en')} to {wareki(v[1], 'en')}"
        return f"{wareki(v[0])}から{wareki(v[1])}まで"


def _payload(compact: str) -> dict[str, Any]:
    jwt = compact.split("~", 1)[0]
    out: dict[str, Any] = json.loads(b64d(jwt.split(".")[1]))
    return out


def _span(compact: str) -> tuple[date, date] | None:
    try:
        p = _payload(compact.strip())
        start = p.get("nbf", p["iat"])
        # nbf is the end of the day before the first valid day (issuance.py): one second on.
        first = japan_day(datetime.fromtimestamp(int(start) + 1, UTC))
        last = japan_day(datetime.fromtimestamp(int(p["exp"]) - 1, UTC))
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    return first, last


def describe(compact: str) -> dict[str, Any]:
    """What a person needs to tell this card from another, read from the credential: the
    municipality (from ``iss``), the tier, the prefecture, the person and the pairwise
    ``sub`` (one per person and municipality: the same registration arrives in the same
    card)."""
    from dualres.schemas import lgcodes

    p = _payload(compact)
    iss = str(p.get("iss", ""))
    lg = iss.rstrip("/").rsplit("/", 1)[-1]
    disclosed: dict[str, Any] = {}
    for d in sdjwt.parse_compact(compact).disclosures:
        try:
            item = json.loads(b64d(d))
        except ValueError:
            continue
        if isinstance(item, list) and len(item) == 3 and isinstance(item[1], str):
            disclosed[item[1]] = item[2]
    m = lgcodes.lookup(lg)
    pref = lgcodes.prefecture_of(lg) if m else None
    person = disclosed.get("person") if isinstance(disclosed.get("person"), dict) else {}
    assert isinstance(person, dict)
    return {
        "iss": iss,
        "lg_code": lg,
        "name": m.name if m else "",
        "prefecture_name": pref.name if pref and m and not m.name.startswith(pref.name) else "",
        "prefecture": p.get("prefecture"),
        "tier": p.get("tier"),
        "sub": disclosed.get("sub"),
        "person": {k: person.get(k) for k in ("family_name", "given_name", "birthdate")},
    }


def _same_person(info: dict[str, Any], holder: dict[str, Any]) -> bool:
    return info.get("person") == holder


class Wallet:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cards_dir = root / CARDS

    # --- reading ---

    def _legacy(self) -> bool:
        return (self.root / ISSUER_FILE).exists() and not self.cards_dir.exists()

    def _holder(self) -> dict[str, Any] | None:
        path = self.root / HOLDER_FILE
        if not path.exists():
            return None
        value: dict[str, Any] = json.loads(path.read_text())
        return value

    def _card(self, card_id: str, store: BatchStore, holder: dict[str, Any] | None) -> Card:
        path = store.root / CARD_FILE
        info: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        if not info:
            held = store.held() or [store.root / f"{LAST}.sd-jwt"]
            if held[0].exists():
                info = describe(held[0].read_text().strip())
        own = holder is None or _same_person(info, holder)
        return Card(card_id, store, info, own)

    def cards(self) -> list[Card]:
        holder = self._holder()  # read once: every card is judged against it
        if self._legacy():
            return [self._card(LEGACY_ID, BatchStore(self.root), holder)]
        if not self.cards_dir.exists():
            return []
        ids = sorted((p.name for p in self.cards_dir.iterdir() if p.name.isdigit()), key=int)
        return [self._card(i, BatchStore(self.cards_dir / i), holder) for i in ids]

    def pick(self, card_id: str | None) -> Card:
        cards = self.cards()
        if not cards:
            raise CardError(f"証明書がありません / no credential in {self.root}")
        if card_id is None:
            if len(cards) == 1:
                return cards[0]
            listed = ", ".join(f"{c.id} {c.place()} {c.tier()} {c.whose()}" for c in cards)
            raise CardError(
                "証明書が複数あります。--credential ID で選んでください（dualres-wallet list）/ "
                f"several credentials: pick one with --credential ID: {listed}"
            )
        for c in cards:
            if c.id == card_id:
                return c
        raise CardError(f"ID {card_id} の証明書はありません / no credential with ID {card_id}")

    # --- storing ---

    def _migrate_legacy(self) -> None:
        """Move a one-card store under cards/1/ (renames within one directory tree)."""
        target = self.cards_dir / LEGACY_ID
        target.mkdir(parents=True, mode=0o700)
        for name in (ISSUER_FILE, CREDENTIALS_DIR, f"{LAST}.pem", f"{LAST}.sd-jwt", CARD_FILE):
            if (self.root / name).exists():
                os.replace(self.root / name, target / name)

    def save(self, batch: Batch, *, insecure_http: bool) -> Card:
        """Put a batch into its card: the card of the same registration (same municipality
        and pairwise ``sub``) if there is one, else a new card."""
        if not batch.credentials:
            raise CardError("the issuer sent no credential")
        info = describe(batch.credentials[0][1])
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._holder() is None:
            write_private(self.root / HOLDER_FILE, json.dumps(info["person"]).encode())
        existing = self.cards()
        for c in existing:
            if c.info.get("iss") == info["iss"] and c.info.get("sub") == info["sub"]:
                store = c.store
                break
        else:
            if not existing:
                # One card keeps the layout of a one-card wallet (wallet/batch.py), so a
                # wallet with one registration is what it always was.
                store = BatchStore(self.root)
            else:
                if self._legacy():
                    self._migrate_legacy()
                used = [int(c.id) for c in existing]
                store = BatchStore(self.cards_dir / str(max(used) + 1))
        store.save(batch, insecure_http=insecure_http)
        write_private(store.root / CARD_FILE, json.dumps(info, ensure_ascii=False).encode())
        found = [c for c in self.cards() if c.store.root == store.root]
        return found[0]
