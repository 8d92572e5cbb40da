"""A throwaway Google Cloud service account for tests: a fresh RSA key, a key file in
google-auth's format whose ``token_uri`` is the simulator's token endpoint."""
from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "shop-images-test"
SA_EMAIL = f"bananaflow-runner@{PROJECT}.iam.gserviceaccount.com"


def new_key() -> tuple[str, str]:
    """``(private PEM, public PEM)`` of a new 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return private, public


def service_account_info(private_pem: str, token_uri: str, project: str = PROJECT) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": private_pem,
        "client_email": SA_EMAIL,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }


def write_service_account(path: Path, private_pem: str, token_uri: str, project: str = PROJECT) -> Path:
    path.write_text(json.dumps(service_account_info(private_pem, token_uri, project)), encoding="utf-8")
    return path
