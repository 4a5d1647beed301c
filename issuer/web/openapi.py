"""The OpenAPI 3.1 description of ``/api/v1``, as a Python dict.

Kept by hand next to the code it describes; tests check that every route is
here with its methods and that real responses validate against the schemas.
"""

from __future__ import annotations

from typing import Any, Final

from dualres.schemas import load_json

JSON: Final = "application/json"
_ID: Final = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"}
_DATE: Final = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_DATETIME: Final = {"type": "string", "format": "date-time"}
_LG_CODE: Final = {"type": "string", "pattern": "^[0-9]{6}$"}
# What parse.text() accepts: no control characters (C0, DEL, C1), and not
# blank once trimmed.  Multi-line text (reasons) may also hold tab and newline.
_CTRL: Final = "\\u0000-\\u001f\\u007f-\\u009f"
_CTRL_ML: Final = "\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f"
_PRINTABLE: Final = f"^[^{_CTRL}]*$"
_NOT_BLANK: Final = f"^[^{_CTRL}]*[^\\s{_CTRL}][^{_CTRL}]*$"
_NOT_BLANK_ML: Final = f"^[^{_CTRL_ML}]*[^\\s{_CTRL}][^{_CTRL_ML}]*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page_of(item: str) -> dict[str, Any]:
    """A page of a listing: the items and where the page stands."""
    return {
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }


def _body(schema: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": _ref(schema)}}}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


def _errors(*codes: int) -> dict[str, Any]:
    names = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        415: "UnsupportedMediaType",
        422: "Unprocessable",
        423: "Locked",
        503: "Unavailable",
    }
    return {str(c): {"$ref": f"#/components/responses/{names[c]}"} for c in codes}


_QUERY_TEXT: Final = {"type": "string", "maxLength": 64, "pattern": _PRINTABLE}
_PATH_ID: Final = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The registration's public id.",
    "schema": _ID,
}
_PAGE: Final = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    },
    {
        "name": "offset",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": 10_000_000, "default": 0},
    },
]


def _query(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query"}
    if description is not None:
        param["description"] = description
    return {**param, "schema": schema}


def _listing(summary: str, schema: str, *params: dict[str, Any]) -> dict[str, Any]:
    """A GET of one page of a listing: its filters, then limit and offset."""
    return {
        "get": {
            "summary": summary,
            "parameters": [*params, *_PAGE],
            "responses": {"200": _ok(schema), **_errors(400, 401)},
        }
    }


def _action(summary: str, description: str, *extra_errors: int) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "parameters": [_PATH_ID],
            "requestBody": _body("Reason"),
            "responses": {
                "200": _ok("Registration"),
                **_errors(400, 401, 404, 409, 415, 422, *extra_errors),
            },
        }
    }


def _schemas() -> dict[str, Any]:
    activities = [a["code"] for a in load_json("activities.json")]
    text = {"type": "string", "minLength": 1, "pattern": _NOT_BLANK}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "error_description"],
            "properties": {
                "error": {"type": "string", "description": "Stable code (docs/issuer-api.md)."},
                "error_description": {"type": "string", "description": "English, for people."},
                "error_description_ja": {"type": "string", "description": "日本語の説明"},
                "field": {"type": "string", "description": "The request member at fault."},
                "remaining": {"type": "integer", "description": "wrong_pin: tries left."},
                "state": {"type": "string", "description": "invalid_state: the current state."},
            },
        },
        "CardIdentity": {
            "type": "object",
            "description": "A card check this municipality started (POST /card-checks) and "
            "the resident's card answered. No number and no PIN ever come here.",
            "required": ["card_check"],
            "additionalProperties": False,
            "properties": {
                "card_check": {"type": "string", "pattern": "^[A-Za-z0-9_-]{32}$"},
            },
        },
        "CardCheck": {
            "type": "object",
            "required": ["id", "state", "challenge", "expires_at", "reader_url", "response_uri"],
            "properties": {
                "id": {"type": "string"},
                "state": {"enum": ["waiting", "verified", "failed", "used", "expired"]},
                "challenge": {"type": "string", "description": "What the card signs."},
                "expires_at": {"type": "string", "format": "date-time"},
                "error": {"type": "string", "description": "wrong_pin, card_locked, ..."},
                "remaining": {"type": "integer", "description": "wrong_pin: tries left."},
                "facts": {
                    "type": "object",
                    "description": "verified: the basic four facts the 署名用 certificate carries.",
                },
                "reader_url": {"type": "string", "description": "The resident-facing page."},
                "response_uri": {"type": "string", "description": "Where a card client answers."},
            },
        },
        "DeclaredIdentity": {
            "type": "object",
            "description": "Self-declared basic four (basic tier only; identity_checked false).",
            "required": ["declared"],
            "additionalProperties": False,
            "properties": {
                "declared": {
                    "type": "object",
                    "required": [
                        "family_name",
                        "given_name",
                        "family_name_kana",
                        "given_name_kana",
                        "birthdate",
                        "address",
                        "address_lg_code",
                    ],
                    "additionalProperties": False,
                    "properties": {
                        "family_name": {**text, "maxLength": 64},
                        "given_name": {**text, "maxLength": 64},
                        "family_name_kana": {**text, "maxLength": 64},
                        "given_name_kana": {**text, "maxLength": 64},
                        "birthdate": _DATE,
                        "sex": {"enum": ["male", "female"]},
                        "address": {**text, "maxLength": 256},
                        "address_lg_code": _LG_CODE,
                    },
                }
            },
        },
        "SecondHome": {
            "type": "object",
            "required": ["address"],
            "additionalProperties": False,
            "properties": {
                "address": {**text, "maxLength": 256},
                "postal_code": {"type": ["string", "null"], "pattern": "^[0-9]{3}-[0-9]{4}$"},
            },
        },
        "NewRegistration": {
            "type": "object",
            "required": ["identity", "tier", "activities", "second_home", "valid_until"],
            "additionalProperties": False,
            "properties": {
                "identity": {"oneOf": [_ref("CardIdentity"), _ref("DeclaredIdentity")]},
                "tier": {"enum": ["basic", "premium"]},
                "activities": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 2 * len(activities),
                    "items": {"enum": activities},
                },
                "second_home": _ref("SecondHome"),
                "valid_from": {**_DATE, "description": "Default: today (JST)."},
                "valid_until": _DATE,
                "registered_since": {**_DATE, "description": "Default: today (JST)."},
            },
        },
        "Registration": {
            "type": "object",
            "required": [
                "id",
                "municipality",
                "tier",
                "state",
                "identity_checked",
                "person",
                "primary_residence",
                "second_home",
                "activities",
                "registered_since",
                "valid_from",
                "valid_until",
                "credentials",
                "created_at",
                "updated_at",
            ],
            "properties": {
                "id": _ID,
                "municipality": {
                    "type": "object",
                    "required": ["lg_code", "name"],
                    "properties": {"lg_code": _LG_CODE, "name": {"type": "string"}},
                },
                "tier": {"enum": ["basic", "premium"]},
                "state": {"enum": ["active", "suspended", "revoked", "expired"]},
                "state_reason": {"type": ["string", "null"]},
                "identity_checked": {"type": "boolean"},
                "person": {
                    "type": "object",
                    "required": [
                        "family_name",
                        "given_name",
                        "family_name_kana",
                        "given_name_kana",
                        "birthdate",
                    ],
                    "properties": {
                        "family_name": {"type": "string"},
                        "given_name": {"type": "string"},
                        "family_name_kana": {"type": "string"},
                        "given_name_kana": {"type": "string"},
                        "birthdate": _DATE,
                        "sex": {"type": ["string", "null"]},
                    },
                },
                "primary_residence": {
                    "type": "object",
                    "required": ["lg_code", "name"],
                    "properties": {"lg_code": _LG_CODE, "name": {"type": ["string", "null"]}},
                },
                "second_home": {
                    "type": "object",
                    "required": ["address"],
                    "properties": {
                        "address": {"type": "string"},
                        "postal_code": {"type": ["string", "null"]},
                    },
                },
                "activities": {"type": "array", "items": {"type": "string"}},
                "registered_since": _DATE,
                "valid_from": _DATE,
                "valid_until": _DATE,
                "credentials": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "How many credentials were issued.",
                },
                "created_at": _DATETIME,
                "updated_at": _DATETIME,
            },
        },
        "RegistrationList": _page_of("Registration"),
        "Reason": {
            "type": "object",
            "required": ["reason"],
            "additionalProperties": False,
            "properties": {"reason": {**text, "maxLength": 500, "pattern": _NOT_BLANK_ML}},
        },
        "RegistrationSearch": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "q": {**_QUERY_TEXT, "description": "Name or kana fragment."},
                "state": {"enum": ["active", "suspended", "revoked", "expired"]},
                "tier": {"enum": ["basic", "premium"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                "offset": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
            },
        },
        "Renewal": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "valid_until": {**_DATE, "description": "Default: credential_max_days from today."}
            },
        },
        "HolderKey": {
            "type": "object",
            "required": ["holder_jwk"],
            "additionalProperties": False,
            "properties": {
                "holder_jwk": {
                    "type": "object",
                    "description": "The wallet's EC P-256 public JWK (no private member).",
                    "required": ["kty", "crv", "x", "y"],
                    "properties": {
                        "kty": {"const": "EC"},
                        "crv": {"const": "P-256"},
                        "x": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
                        "y": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
                    },
                }
            },
        },
        "Credential": {
            "type": "object",
            "required": ["id", "status", "kid", "issued_at", "expires_at", "status_list"],
            "properties": {
                "id": {"type": "integer"},
                "status": {"enum": ["valid", "revoked", "suspended"]},
                "kid": {"type": "string"},
                "holder_jkt": {"type": "string", "description": "RFC 7638 thumbprint."},
                "issued_at": _DATETIME,
                "expires_at": _DATETIME,
                "status_list": {
                    "type": "object",
                    "required": ["uri", "idx"],
                    "properties": {
                        "uri": {"type": "string", "format": "uri"},
                        "idx": {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
        "CredentialList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("Credential")}},
        },
        "IssuedCredential": {
            "allOf": [
                _ref("Credential"),
                {
                    "type": "object",
                    "required": ["credential"],
                    "properties": {
                        "credential": {
                            "type": "string",
                            "description": "Compact SD-JWT VC with every disclosure; "
                            "shown once, never stored.",
                        }
                    },
                },
            ]
        },
        "AuditEntry": {
            "type": "object",
            "required": ["seq", "at", "actor", "action", "detail", "prev_hash", "hash"],
            "properties": {
                "seq": {"type": "integer", "minimum": 1},
                "at": _DATETIME,
                "actor": {"type": "string"},
                "action": {"type": "string"},
                "target": {"type": ["string", "null"]},
                "detail": {"type": "object"},
                "prev_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
        },
        "AuditList": _page_of("AuditEntry"),
        "CredentialOffer": {
            "type": "object",
            "required": ["offer_id", "offer_uri", "wallet_uri", "tx_code", "expires_at", "qr_url"],
            "properties": {
                "offer_id": {"type": "string"},
                "offer_uri": {"type": "string", "pattern": "^openid-credential-offer://"},
                "wallet_uri": {
                    "type": "string",
                    "format": "uri",
                    "pattern": "^https?://[^?#]*/wallet/#credential_offer_uri=[^&#]+$",
                    "description": "The same offer as an https link to this deployment's "
                    "browser wallet (/wallet/), for a phone with no OpenID4VCI wallet app: "
                    "its credential_offer_uri is offer_uri's, in the fragment (never sent "
                    "to a server, so never in a log).",
                },
                "tx_code": {"type": "string", "pattern": "^[0-9]{6}$"},
                "expires_at": {"type": "string", "format": "date-time"},
                "qr_url": {
                    "type": "string",
                    "pattern": "^/api/v1/registrations/[^/]+/offers/[^/]+/qr[.]png$",
                    "description": "Path of offer_uri's QR as image/png (same "
                    "Authorization), rendered when fetched: fetch it only to show it, "
                    "or make your own QR of offer_uri.",
                },
            },
        },
        "ChainCheck": {
            "type": "object",
            "required": ["ok", "entries", "first_bad_seq", "problem"],
            "properties": {
                "ok": {"type": "boolean"},
                "entries": {"type": "integer"},
                "first_bad_seq": {"type": ["integer", "null"]},
                "problem": {"type": ["string", "null"]},
                "signed_seq": {
                    "type": ["integer", "null"],
                    "description": "The newest entry the signed checkpoint covers.",
                },
                "checkpoints": {"type": "integer"},
                "head": {"type": ["string", "null"]},
            },
        },
    }


def _responses() -> dict[str, Any]:
    def err(description: str) -> dict[str, Any]:
        return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}

    return {
        "BadRequest": err("invalid_request: malformed JSON, a missing member or a wrong type."),
        "Unauthorized": {
            **err("invalid_token: missing, unknown, expired or revoked bearer token."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        },
        "Forbidden": err("insufficient_scope: the token's role may not do this."),
        "NotFound": err("not_found: no such record in this token's municipality."),
        "Conflict": err("invalid_state, registration_expired: not possible in this state."),
        "UnsupportedMediaType": err("unsupported_media_type: send application/json."),
        "Unprocessable": err("A registration rule or the card check refused the request."),
        "Locked": err("card_locked: three wrong PINs locked the card."),
        "Unavailable": err("identity_unavailable or no_signing_key."),
    }


def _paths() -> dict[str, Any]:
    return {
        "/card-checks": {
            "post": {
                "summary": "Start a card check: a single-use challenge for the resident's card "
                "(5 minutes); the resident answers on the reader page or a card client",
                "responses": {"201": _ok("CardCheck", "Created"), **_errors(401, 503)},
            }
        },
        "/card-checks/{id}": {
            "get": {
                "summary": "A card check's state; once verified, the facts the card proved",
                "parameters": [_PATH_ID],
                "responses": {"200": _ok("CardCheck"), **_errors(401, 404)},
            }
        },
        "/registrations": {
            "post": {
                "summary": "Register a second home (uses a card check, applies every rule)",
                "requestBody": _body("NewRegistration"),
                "responses": {
                    "201": _ok("Registration", "Created"),
                    **_errors(400, 401, 404, 409, 415, 422, 503),
                },
            },
            **_listing(
                "List this municipality's registrations, newest first",
                "RegistrationList",
                _query("state", {"enum": ["active", "suspended", "revoked", "expired"]}),
                _query("tier", {"enum": ["basic", "premium"]}),
            ),
        },
        "/registrations/search": {
            "post": {
                "summary": "List registrations by a name or kana fragment, newest first",
                "description": "The name travels in the body, never in a URL (access logs, "
                "proxies). A text that holds a My Number is refused (422, not echoed).",
                "requestBody": _body("RegistrationSearch"),
                "responses": {
                    "200": _ok("RegistrationList"),
                    **_errors(400, 401, 415, 422),
                },
            }
        },
        "/registrations/{id}": {
            "get": {
                "summary": "One registration",
                "parameters": [_PATH_ID],
                "responses": {"200": _ok("Registration"), **_errors(401, 404)},
            }
        },
        "/registrations/{id}/suspend": _action(
            "Suspend", "Active → suspended; every credential's status becomes 2 (suspended)."
        ),
        "/registrations/{id}/reinstate": _action(
            "Reinstate", "Suspended → active; suspended credentials become 0 (valid) again."
        ),
        "/registrations/{id}/revoke": _action(
            "Revoke (supervisor)",
            "Final. Every credential's status becomes 1 (revoked). Needs the supervisor role.",
            403,
        ),
        "/registrations/{id}/renew": {
            "post": {
                "summary": "Extend valid_until (at most credential_max_days from today)",
                "parameters": [_PATH_ID],
                "requestBody": _body("Renewal"),
                "responses": {
                    "200": _ok("Registration"),
                    **_errors(400, 401, 404, 409, 415, 422),
                },
            }
        },
        "/registrations/{id}/credentials": {
            "get": {
                "summary": "Credentials issued for a registration",
                "parameters": [_PATH_ID],
                "responses": {"200": _ok("CredentialList"), **_errors(401, 404)},
            },
            "post": {
                "summary": "Issue a credential bound to a holder key (for tests and integrators)",
                "parameters": [_PATH_ID],
                "requestBody": _body("HolderKey"),
                "responses": {
                    "201": _ok("IssuedCredential", "Issued"),
                    **_errors(400, 401, 404, 409, 415, 503),
                },
            },
        },
        "/registrations/{id}/offers": {
            "post": {
                "summary": "Make an OpenID4VCI pre-authorized credential offer (10 minutes)",
                "description": "The wallet app scans the QR of offer_uri (qr_url); a phone "
                "without one opens wallet_uri (the browser wallet, same offer) instead. The "
                "holder types tx_code, told at the counter. See docs/oid4vci.md.",
                "parameters": [_PATH_ID],
                "responses": {
                    "201": _ok("CredentialOffer", "Offered"),
                    **_errors(401, 404, 409),
                },
            }
        },
        "/audit": _listing(
            "This municipality's audit log, oldest first",
            "AuditList",
            _query("action", _QUERY_TEXT),
            _query("target", _QUERY_TEXT),
            _query(
                "since",
                {**_QUERY_TEXT, "maxLength": 40},
                "ISO 8601 date-time, or a date (from 00:00 JST).",
            ),
        ),
        "/audit/verify": {
            "get": {
                "summary": "Recompute this municipality's audit hash chain",
                "responses": {"200": _ok("ChainCheck"), **_errors(401)},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {}}}},
            }
        },
    }


def document(base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dualres issuer staff API",
            "version": "1",
            "description": "Municipal staff API of the dual-residence (二地域居住) register: "
            "registrations, credentials, audit. Each token is bound to one municipality; "
            "records of other municipalities answer 404. See docs/issuer-api.md.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": f"{base_url}/api/v1"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "drs_ + 43 base64url characters",
                    "description": "Issued by an administrator (the dualres-issuer command); "
                    "bound to one municipality and a role (clerk or supervisor).",
                }
            },
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }
