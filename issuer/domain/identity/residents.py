"""The synthetic residents of the JPKI simulator: who is on each demo card.

Made-up people only.  There is deliberately no individual number (個人番号)
here: a JPKI certificate does not carry it, and the issuer never needs it.
Each card has two PINs, as the real one does: the 4-digit 利用者証明用 PIN
and the 6-16 character 署名用 password (upper-case letters and digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dualres.issuer.domain.identity import PersonFacts


@dataclass(frozen=True)
class Resident(PersonFacts):
    """A synthetic resident: the card's id in the simulator, its two PINs, the facts."""

    card_id: str = ""
    pin: str = ""  # 利用者証明用 (4 digits)
    sign_password: str = ""  # 署名用 (6-16 of A-Z 0-9)


def _r(
    card_id: str,
    pin: str,
    password: str,
    name: tuple[str, str],
    kana: tuple[str, str],
    birthdate: str,
    sex: str,
    address: str,
    lg_code: str,
) -> Resident:
    return Resident(
        *name,
        *kana,
        date.fromisoformat(birthdate),
        sex,
        address,
        lg_code,
        card_id=card_id,
        pin=pin,
        sign_password=password,
    )


# fmt: off
RESIDENTS: list[Resident] = [
    _r("yamada", "2106", "HANAKO85", ("山田", "花子"), ("ヤマダ", "ハナコ"), "1985-06-15", "female",
       "東京都千代田区神田神保町二丁目3番地4", "131016"),
    _r("sato", "8130", "KENTA79", ("佐藤", "健太"), ("サトウ", "ケンタ"), "1979-03-02", "male",
       "北海道札幌市中央区北一条西二丁目1番地", "011011"),
    _r("suzuki", "3656", "ICHIRO90", ("鈴木", "一郎"), ("スズキ", "イチロウ"), "1990-11-23", "male",
       "神奈川県横浜市中区山下町10番地", "141003"),
    _r("takahashi", "5858", "MISAKI88", ("高橋", "美咲"), ("タカハシ", "ミサキ"), "1988-04-09",
       "female", "長野県北佐久郡軽井沢町大字軽井沢1323番地", "203211"),
    _r("tanaka", "5709", "DAISUKE72", ("田中", "大輔"), ("タナカ", "ダイスケ"), "1972-08-30",
       "male", "長野県北佐久郡軽井沢町大字長倉2140番地", "203211"),
    _r("ito", "1399", "SAKURA95", ("伊藤", "さくら"), ("イトウ", "サクラ"), "1995-03-27", "female",
       "大阪府大阪市北区梅田三丁目1番1号", "271004"),
    _r("watanabe", "4076", "SHO1983", ("渡辺", "翔"), ("ワタナベ", "ショウ"), "1983-12-05", "male",
       "愛知県名古屋市中村区名駅四丁目7番1号", "231002"),
    _r("nakamura", "8628", "YUMI1969", ("中村", "由美"), ("ナカムラ", "ユミ"), "1969-07-18",
       "female", "福岡県福岡市博多区博多駅前二丁目1番1号", "401307"),
    _r("kobayashi", "9561", "MAKOTO58", ("小林", "誠"), ("コバヤシ", "マコト"), "1958-01-11",
       "male", "京都府京都市左京区下鴨本町5番地", "261009"),
    _r("kato", "7677", "YOKO1976", ("加藤", "陽子"), ("カトウ", "ヨウコ"), "1976-09-21", "female",
       "宮城県仙台市青葉区一番町三丁目2番地", "041009"),
    _r("yoshida", "8693", "TAKUMI01", ("吉田", "拓海"), ("ヨシダ", "タクミ"), "2001-05-03", "male",
       "広島県広島市中区大手町一丁目5番地", "341002"),
    _r("yamamoto", "2909", "NAOKO64", ("山本", "直子"), ("ヤマモト", "ナオコ"), "1964-02-29",
       "female", "沖縄県那覇市久茂地一丁目1番1号", "472018"),
    _r("matsumoto", "0641", "SOTA1998", ("松本", "颯太"), ("マツモト", "ソウタ"), "1998-10-14",
       "male", "石川県金沢市広坂一丁目1番1号", "172014"),
    _r("inoue", "2424", "MEGUMI81", ("井上", "恵"), ("イノウエ", "メグミ"), "1981-06-01", "female",
       "新潟県新潟市中央区学校町通一番町602番地", "151009"),
    _r("kimura", "9834", "RYO1993", ("木村", "亮"), ("キムラ", "リョウ"), "1993-08-08", "male",
       "東京都世田谷区世田谷四丁目21番27号", "131121"),
    _r("hayashi", "8119", "MAYUMI70", ("林", "真由美"), ("ハヤシ", "マユミ"), "1970-12-24",
       "female", "神奈川県鎌倉市御成町18番10号", "142042"),
    _r("shimizu", "0170", "KENICHI55", ("清水", "健一"), ("シミズ", "ケンイチ"), "1955-04-17",
       "male", "静岡県静岡市葵区追手町5番1号", "221007"),
    _r("yamaguchi", "2891", "AI2000", ("山口", "愛"), ("ヤマグチ", "アイ"), "2000-01-30", "female",
       "高知県高知市本町五丁目1番45号", "392014"),
    _r("mori", "7867", "YAMATO87", ("森", "大和"), ("モリ", "ヤマト"), "1987-11-02", "male",
       "熊本県熊本市中央区手取本町1番1号", "431001"),
    _r("ikeda", "5954", "CHIHIRO91", ("池田", "千尋"), ("イケダ", "チヒロ"), "1991-07-07", "female",
       "長野県松本市丸の内3番7号", "202029"),
    _r("saito", "9752", "YUMA1984", ("齋藤", "悠真"), ("サイトウ", "ユウマ"), "1984-03-15", "male",
       "東京都港区芝公園一丁目5番25号", "131032"),
    _r("abe", "9097", "AOI1999", ("阿部", "葵"), ("アベ", "アオイ"), "1999-09-09", "female",
       "長野県長野市大字鶴賀緑町1613番地", "202011"),
    _r("ishikawa", "9232", "YUKI1978", ("石川", "勇気"), ("イシカワ", "ユウキ"), "1978-05-26",
       "male", "兵庫県神戸市中央区加納町六丁目5番1号", "281000"),
    _r("maeda", "3940", "YUI2003", ("前田", "結衣"), ("マエダ", "ユイ"), "2003-02-14", "female",
       "北海道札幌市北区北八条西二丁目1番地", "011002"),
]
# fmt: on

BY_CARD: dict[str, Resident] = {r.card_id: r for r in RESIDENTS}
BY_FAMILY_NAME: dict[str, Resident] = {r.family_name: r for r in RESIDENTS}
