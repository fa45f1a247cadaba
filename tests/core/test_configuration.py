"""Configuration: the OpenAPI schema stays valid; production refuses defaults (D1, D5)."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    schema = (tmp_path / "schema.yaml").read_text()
    assert "/v1/api/points/adjust" in schema and "shopifySessionToken" in schema


def test_openapi_schema_is_served(api, db):
    response = api.get("/v1/api/schema/")

    assert response.status_code == 200
    assert b"openapi" in response.content


def _production_env(**overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECRET_KEY", "ENCRYPTION_KEYS", "DEMO_MODE", "DEBUG"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "loyalnest.settings.production",
            "SECRET_KEY": "p" * 30 + "-Kx81!mQz" + "r" * 30,
            "ENCRYPTION_KEYS": "k2026:" + base64.b64encode(os.urandom(32)).decode(),
            "SHOPIFY_API_KEY": "client-id",
            "SHOPIFY_API_SECRET": "client-secret-from-the-partner-dashboard",
            "ALLOWED_HOSTS": "loyalnest.example.com",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        }
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _check_deploy(env):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_check_deploy_is_clean_on_production_settings():
    result = _check_deploy(_production_env())

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"ENCRYPTION_KEYS": None}, "ENCRYPTION_KEYS"),
        ({"SHOPIFY_API_SECRET": None}, "SHOPIFY_API_SECRET"),
        ({"DEMO_MODE": "1"}, "DEMO_MODE"),
    ],
    ids=["default-secret-key", "default-encryption-keys", "no-shopify-secret", "demo-mode"],
)
def test_production_refuses_default_secrets_and_demo_mode(override, complaint):
    result = _check_deploy(_production_env(**override))

    assert result.returncode != 0
    assert complaint in result.stderr
