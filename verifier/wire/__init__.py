"""The wire format every role shares: SD-JWT VC, KB-JWT, Token Status List,
the trust list and the compact QR transport.  No I/O, no clock: times and keys
are arguments, so issuer, wallet and verifier agree byte for byte."""
