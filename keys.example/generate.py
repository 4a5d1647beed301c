"""(Re)create the development keys in this directory: P-256, PKCS#8 PEM, unencrypted.

They are committed once and kept stable, so tests, fixtures and demo data that name
them do not change; this script exists to show where they came from.  It refuses to
replace an existing key unless given --force.

    python keys.example/generate.py [--force]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = Path(__file__).resolve().parent
NAMES = ("trust-anchor", "issuing-ca", "lg-203211", "lg-011002", "lg-131016")


def thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): how the issuer recognises these keys."""
    n = public.public_numbers()

    def b64(i: int) -> str:
        return base64.urlsafe_b64encode(i.to_bytes(32, "big")).rstrip(b"=").decode()

    jwk = {"crv": "P-256", "kty": "EC", "x": b64(n.x), "y": b64(n.y)}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def write(name: str, *, force: bool) -> ec.EllipticCurvePublicKey:
    private_path = HERE / f"{name}.pem"
    public_path = HERE / f"{name}.pub.pem"
    if private_path.exists() and not force:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"{private_path}: not an EC key")
        return key.public_key()
    key = ec.generate_private_key(ec.SECP256R1())
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            # Unencrypted on purpose: these keys are public and for development only.
            serialization.NoEncryption(),
        )
    )
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key.public_key()


def main() -> None:
    parser = argparse.ArgumentParser(description="(Re)create the development keys.")
    parser.add_argument("--force", action="store_true", help="replace existing keys")
    args = parser.parse_args()
    for name in NAMES:
        print(f"{name}.pem  {thumbprint(write(name, force=args.force))}")


if __name__ == "__main__":
    main()
