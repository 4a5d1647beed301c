"""Real QR codes: rendered by the wallet, read back by zxing-cpp, verified offline."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFilter
from qrcode import util

from dualres.verifier import Bundle, MemoryReplayStore, verify
from dualres.verifier.scan import ScanUnavailableError, decode_qr_image
from dualres.verifier.wire import jws
from dualres.wallet import qr
from dualres.wallet.qr import qr_version, render_png
from tests.support import NOW, World

ROOT = Path(__file__).resolve().parents[1]


def _verify(text: str, bundle: Bundle, profile: str = "counter") -> str:
    return str(verify(text, bundle, profile, now=NOW, replay=MemoryReplayStore()).reason)


def test_counter_presentation_round_trip(world: World, bundle: Bundle, tmp_path: Path) -> None:
    text = world.present()
    assert world.karuizawa.iss.startswith("https://dualres.example.jp/")
    png = tmp_path / "counter.png"
    version = render_png(text, png)
    assert version == qr_version(text) <= 18
    # A clean rendering is read by the fast pass alone.
    assert decode_qr_image(png, fallback=False) == [text]
    assert decode_qr_image(str(png)) == [text]
    assert _verify(text, bundle) == "ok"


def test_transport_goes_in_alphanumeric_mode(world: World) -> None:
    for _ in range(5):  # fresh nonce and signatures each time: the size must not wander
        text = world.present()
        assert qr._segment(text).mode == util.MODE_ALPHA_NUM
        assert qr_version(text, "M") <= 18
        assert qr_version(text, "L") < qr_version(text, "M") < qr_version(text, "Q")
    # A plain compact SD-JWT has lower-case letters: byte mode, and much larger.
    plain = world.present(qr=False)
    assert qr._segment(plain).mode == util.MODE_8BIT_BYTE
    assert qr_version(plain) > qr_version(world.present()) + 5


def test_office_presentation_round_trip(world: World, bundle: Bundle, tmp_path: Path) -> None:
    text = world.present(profile="office")
    png = tmp_path / "office.png"
    render_png(text, png, error_correction="L", box_size=4)
    assert decode_qr_image(png) == [text]
    assert _verify(text, bundle, "office") == "ok"


def camera_photo(qr_png: Path, *, seed: int) -> Image.Image:
    """A phone photo of a printed code, made with Pillow only and a seeded RNG.

    Rotated 7°, blurred (radius 1.2), dark grey on light grey, off-centre in a
    1280×960 frame, with a mottled background and sensor noise over everything.
    """
    rng = random.Random(seed)
    dark, light, noise = 80, 165, 80
    code = Image.open(qr_png).convert("L").point(lambda v: dark if v < 128 else light)
    code = code.rotate(7, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=light)
    code = code.filter(ImageFilter.GaussianBlur(1.2))
    size = (1280, 960)
    frame = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    frame = frame.point(lambda v: 110 + v * 90 // 255).filter(ImageFilter.GaussianBlur(3))
    frame.paste(code, (560, 150))
    grain = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    grain = grain.point(lambda v: v * noise // 255)
    return ImageChops.add(frame, grain, scale=1.0, offset=-noise // 2)


@pytest.mark.slow
def test_camera_like_photo(world: World, bundle: Bundle, tmp_path: Path) -> None:
    text = world.present()
    png = tmp_path / "counter.png"
    render_png(text, png, box_size=5)
    photo = camera_photo(png, seed=20261118)
    photo.save(tmp_path / "photo.png")
    # Too noisy for the fast pass; the fallback search reads it.
    assert decode_qr_image(photo, fallback=False) == []
    assert decode_qr_image(tmp_path / "photo.png") == [text]
    assert _verify(text, bundle) == "ok"


def test_no_qr_is_an_empty_list(tmp_path: Path) -> None:
    rng = random.Random(1)
    noise = Image.frombytes("L", (640, 480), rng.randbytes(640 * 480))
    noise.save(tmp_path / "noise.png")
    assert decode_qr_image(tmp_path / "noise.png") == []
    Image.new("RGB", (300, 200), "white").save(tmp_path / "white.jpg")
    assert decode_qr_image(tmp_path / "white.jpg") == []


def test_not_an_image(tmp_path: Path) -> None:
    from dualres.verifier.scan import ScanError

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ScanError):
        decode_qr_image(bad)


def test_missing_scan_extra(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    world: World,
) -> None:
    from dualres.verifier.cli import main

    monkeypatch.setitem(sys.modules, "zxingcpp", None)  # import now raises ImportError
    with pytest.raises(ScanUnavailableError, match=r"dualres\[scan\]"):
        decode_qr_image(tmp_path / "any.png")
    bundle_file = tmp_path / "bundle.json"
    world.bundle().save(bundle_file)
    anchor = tmp_path / "anchor.pem"
    anchor.write_bytes(jws.public_pem(world.anchor))
    argv = ["check", "--bundle", str(bundle_file), "--anchor", str(anchor)]
    code = main([*argv, "--image", str(tmp_path / "any.png")])
    _, err = capsys.readouterr()
    assert code == 2 and "dualres[scan]" in err and "Traceback" not in err


def test_verifier_imports_no_optional_packages() -> None:
    code = (
        "import sys, verifier, verifier.cli, verifier.sync, verifier.scan;"
        "print(sorted(m for m in ('qrcode', 'flask', 'sqlalchemy', 'zxingcpp', 'PIL')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == "[]"
