"""dualres: dual-residence (二地域居住) status credentials.

Everything the distribution installs lives under this one namespace:

- ``dualres.verifier``: the offline verifier every shop installs (only ``cryptography``),
  with ``dualres.verifier.wire``, the wire format all roles share;
- ``dualres.issuer``: the municipal issuer service (extra ``issuer``);
- ``dualres.wallet``: the holder side, the CLI wallet and the demo (extra ``wallet``);
- ``dualres.schemas``: claim schema, type metadata, verifier profiles, municipality codes;
- ``dualres.webapps``: the browser apps, served as static files by the issuer.

The repository keeps each role in its own top-level folder (``verifier/``, ``issuer/``, ...);
``dualres/`` maps them into the namespace (see CONTRIBUTING.md).
"""

__version__ = "0.2.0"
