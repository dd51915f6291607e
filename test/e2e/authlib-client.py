"""Python's Authlib and PyJWT against a running Keyward, as a new user would write them.

Run by test/e2e/authlib.test.ts with Debian's /usr/bin/python3 (python3-authlib, python3-jwt).
Reads one JSON object on stdin: {"base", "clientId", "secret", "keyClientId", "privateKeyPem"}.
Prints one JSON line per step: {"step", "ok", ...} (an error says what was raised).
"""

import json
import sys
import traceback

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata


def report(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def run(step, fn):
    try:
        report(step, ok=True, **(fn() or {}))
    except Exception as err:  # noqa: BLE001 - every failure is reported, the test decides
        report(step, ok=False, error=f"{type(err).__name__}: {err}", trace=traceback.format_exc(limit=3))


def verified_claims(access_token, metadata):
    """PyJWT: the signature against the published JWKS, issuer, audience and expiry."""
    header = jwt.get_unverified_header(access_token)
    key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(access_token).key
    claims = jwt.decode(
        access_token,
        key,
        algorithms=metadata["token_endpoint_auth_signing_alg_values_supported"],
        issuer=metadata["issuer"],
        audience=metadata["issuer"],
        options={"require": ["exp", "iat", "iss", "sub", "jti"]},
    )
    return {"typ": header.get("typ"), "alg": header.get("alg"), "sub": claims["sub"], "scope": claims.get("scope")}


def main():
    config = json.load(sys.stdin)
    metadata = requests.get(config["base"] + "/.well-known/oauth-authorization-server", timeout=10).json()

    def validate():
        AuthorizationServerMetadata(metadata).validate()
        return {"issuer": metadata["issuer"], "token_endpoint": metadata["token_endpoint"]}

    run("metadata", validate)

    def client_secret_basic():
        session = OAuth2Session(config["clientId"], config["secret"], token_endpoint_auth_method="client_secret_basic", scope="service-accounts.read")
        token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        return {"token_type": token["token_type"], **verified_claims(token["access_token"], metadata)}

    run("client_secret_basic", client_secret_basic)

    def private_key_jwt():
        # Authlib's defaults: RS256, the token endpoint as audience, assertions valid for 3600 s.
        session = OAuth2Session(config["keyClientId"], config["privateKeyPem"], token_endpoint_auth_method="private_key_jwt")
        session.register_client_auth_method(PrivateKeyJWT(metadata["token_endpoint"]))
        token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        return verified_claims(token["access_token"], metadata)

    run("private_key_jwt", private_key_jwt)


if __name__ == "__main__":
    main()
