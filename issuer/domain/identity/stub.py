"""A simulated My Number card reader, for demos and tests.

Synthetic cards only (the numbers are made up but carry valid check digits,
so input validation is exercised as in production).  Like the real card, three
wrong PINs in a row lock it; a right PIN resets the count.  The counter lives
in ``stub_card_state`` under an HMAC of the card number, never the number.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dualres.issuer.domain.identity import (
    MAX_PIN_TRIES,
    CardLocked,
    PersonFacts,
    UnknownCard,
    VerifiedIdentity,
    WrongPin,
)
from dualres.issuer.domain.models import CardState


@dataclass(frozen=True)
class _CardKeys:
    my_number: str
    pin: str


# Fields in the order my_number, pin, then the facts (see VerifiedIdentity).
@dataclass(frozen=True)
class Card(PersonFacts, _CardKeys):
    """A synthetic card: its number and PIN, and the facts it proves."""


def _card(
    my_number: str,
    pin: str,
    name: tuple[str, str],
    kana: tuple[str, str],
    birthdate: str,
    sex: str,
    address: str,
    lg_code: str,
) -> Card:
    return Card(my_number, pin, *name, *kana, date.fromisoformat(birthdate), sex, address, lg_code)


# fmt: off
DEMO_CARDS: list[Card] = [
    _card("860699400628", "2106", ("山田", "花子"), ("ヤマダ", "ハナコ"), "1985-06-15", "female",
          "東京都千代田区神田神保町二丁目3番地4", "131016"),
    _card("203314460101", "8130", ("佐藤", "健太"), ("サトウ", "ケンタ"), "1979-03-02", "male",
          "北海道札幌市中央区北一条西二丁目1番地", "011011"),
    _card("734301021414", "3656", ("鈴木", "一郎"), ("スズキ", "イチロウ"), "1990-11-23", "male",
          "神奈川県横浜市中区山下町10番地", "141003"),
    _card("179529839090", "5858", ("高橋", "美咲"), ("タカハシ", "ミサキ"), "1988-04-09", "female",
          "長野県北佐久郡軽井沢町大字軽井沢1323番地", "203211"),
    _card("661032795397", "5709", ("田中", "大輔"), ("タナカ", "ダイスケ"), "1972-08-30", "male",
          "長野県北佐久郡軽井沢町大字長倉2140番地", "203211"),
    _card("164643326771", "1399", ("伊藤", "さくら"), ("イトウ", "サクラ"), "1995-03-27", "female",
          "大阪府大阪市北区梅田三丁目1番1号", "271004"),
    _card("277785636076", "4076", ("渡辺", "翔"), ("ワタナベ", "ショウ"), "1983-12-05", "male",
          "愛知県名古屋市中村区名駅四丁目7番1号", "231002"),
    _card("957500378525", "8628", ("中村", "由美"), ("ナカムラ", "ユミ"), "1969-07-18", "female",
          "福岡県福岡市博多区博多駅前二丁目1番1号", "401307"),
    _card("305579843662", "9561", ("小林", "誠"), ("コバヤシ", "マコト"), "1958-01-11", "male",
          "京都府京都市左京区下鴨本町5番地", "261009"),
    _card("674878720823", "7677", ("加藤", "陽子"), ("カトウ", "ヨウコ"), "1976-09-21", "female",
          "宮城県仙台市青葉区一番町三丁目2番地", "041009"),
    _card("548554039117", "8693", ("吉田", "拓海"), ("ヨシダ", "タクミ"), "2001-05-03", "male",
          "広島県広島市中区大手町一丁目5番地", "341002"),
    _card("484304194135", "2909", ("山本", "直子"), ("ヤマモト", "ナオコ"), "1964-02-29", "female",
          "沖縄県那覇市久茂地一丁目1番1号", "472018"),
    _card("139597466151", "0641", ("松本", "颯太"), ("マツモト", "ソウタ"), "1998-10-14", "male",
          "石川県金沢市広坂一丁目1番1号", "172014"),
    _card("578528421140", "2424", ("井上", "恵"), ("イノウエ", "メグミ"), "1981-06-01", "female",
          "新潟県新潟市中央区学校町通一番町602番地", "151009"),
    _card("246420906489", "9834", ("木村", "亮"), ("キムラ", "リョウ"), "1993-08-08", "male",
          "東京都世田谷区世田谷四丁目21番27号", "131121"),
    _card("656852648816", "8119", ("林", "真由美"), ("ハヤシ", "マユミ"), "1970-12-24", "female",
          "神奈川県鎌倉市御成町18番10号", "142042"),
    _card("437325160488", "0170", ("清水", "健一"), ("シミズ", "ケンイチ"), "1955-04-17", "male",
          "静岡県静岡市葵区追手町5番1号", "221007"),
    _card("554346854982", "2891", ("山口", "愛"), ("ヤマグチ", "アイ"), "2000-01-30", "female",
          "高知県高知市本町五丁目1番45号", "392014"),
    _card("426882239311", "7867", ("森", "大和"), ("モリ", "ヤマト"), "1987-11-02", "male",
          "熊本県熊本市中央区手取本町1番1号", "431001"),
    _card("487518252913", "5954", ("池田", "千尋"), ("イケダ", "チヒロ"), "1991-07-07", "female",
          "長野県松本市丸の内3番7号", "202029"),
    _card("831400140196", "9752", ("齋藤", "悠真"), ("サイトウ", "ユウマ"), "1984-03-15", "male",
          "東京都港区芝公園一丁目5番25号", "131032"),
    _card("111590608811", "9097", ("阿部", "葵"), ("アベ", "アオイ"), "1999-09-09", "female",
          "長野県長野市大字鶴賀緑町1613番地", "202011"),
    _card("386051800872", "9232", ("石川", "勇気"), ("イシカワ", "ユウキ"), "1978-05-26", "male",
          "兵庫県神戸市中央区加納町六丁目5番1号", "281000"),
    _card("235836842909", "3940", ("前田", "結衣"), ("マエダ", "ユイ"), "2003-02-14", "female",
          "北海道札幌市北区北八条西二丁目1番地", "011002"),
]
# fmt: on


_BY_NUMBER: dict[str, Card] = {c.my_number: c for c in DEMO_CARDS}


def cards_json() -> list[dict[str, Any]]:
    """The demo cards as JSON-ready dicts (for the CLI's ``cards`` listing and demos)."""
    out = []
    for c in DEMO_CARDS:
        d = asdict(c)
        d["birthdate"] = c.birthdate.isoformat()
        out.append(d)
    return out


def card_hash(secret: bytes, card: str) -> str:
    # A different label from identity_hash: the two must not be linkable.
    return hmac.new(secret, ("card:" + card).encode("utf-8"), hashlib.sha256).hexdigest()


class StubIdentityProvider:
    """Implements :class:`issuer.identity.IdentityProvider` over :data:`DEMO_CARDS`.

    Writes go to the caller's session, so the counter commits with the
    caller's transaction (see ``IdentityError.persist``).
    """

    def __init__(self, session: Session, secret: bytes) -> None:
        self.session = session
        self.secret = secret

    def _state(self, key: str, *, create: bool) -> CardState | None:
        state = self.session.get(CardState, key, with_for_update=True)
        if state is not None or not create:
            return state
        try:
            with self.session.begin_nested():
                state = CardState(card_hash=key, failures=0, locked=False)
                self.session.add(state)
        except IntegrityError:
            # A concurrent check of the same card created it first.
            state = self.session.get(CardState, key, with_for_update=True, populate_existing=True)
        return state

    def check(self, card: str, pin: str) -> VerifiedIdentity:
        c = _BY_NUMBER.get(card)
        if c is None:
            raise UnknownCard()
        key = card_hash(self.secret, card)
        state = self._state(key, create=False)
        if state is not None and state.locked:
            raise CardLocked()
        if not hmac.compare_digest(pin.encode("utf-8"), c.pin.encode("utf-8")):
            state = self._state(key, create=True)
            assert state is not None
            state.failures += 1
            state.locked = state.failures >= MAX_PIN_TRIES
            self.session.flush()
            raise WrongPin(remaining=max(0, MAX_PIN_TRIES - state.failures))
        if state is not None and state.failures:
            state.failures = 0
            self.session.flush()
        return VerifiedIdentity(stable_id=c.my_number, **c.facts())

    def unlock(self, card: str) -> bool:
        """Reset a locked card (what the municipal office does with the real one)."""
        state = self._state(card_hash(self.secret, card), create=False)
        if state is None:
            return False
        state.failures, state.locked = 0, False
        self.session.flush()
        return True
