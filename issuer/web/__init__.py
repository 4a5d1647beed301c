"""The issuer's HTTP layer: the Flask app factory, its blueprints and the request context."""
