"""The issuer's domain: who may register, what is issued, what changes state, what is audited.

Imports no Flask: the web layer (``dualres.issuer.web``) and the command line
(``dualres.issuer.cli``) call it with a SQLAlchemy session, the settings and the time.
"""
