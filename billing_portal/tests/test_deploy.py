"""Production settings, secrets and the deploy files (no Docker engine runs here, so we parse)."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x7!kq2-production-like-secret-for-the-deploy-check-4r9z@t1m8w",
    "ALLOWED_HOSTS": "billing.example.com",
    "STRIPE_SECRET_KEY": "sk_test_secret_never_logged",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_publishable",
    "STRIPE_WEBHOOK_SECRET": "whsec_secret_never_logged",
    "DATABASE_URL": "sqlite:///:memory:",
    "INVOICE_ISSUER": "Example SaaS B.V.\\nKeizersgracht 100\\n1015 AA Amsterdam\\nVAT NL123456789B01",
}


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    # Not the test run's own variables (conftest allows async-unsafe ORM calls for Playwright).
    inherited = set(PRODUCTION_ENV) | {"DJANGO_ALLOW_ASYNC_UNSAFE", "LOCALSTRIPE_URL", "REDIS_URL"}
    clean = {key: value for key, value in os.environ.items() if key not in inherited}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_warns_when_invoices_would_not_name_the_seller():
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "INVOICE_ISSUER"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "INVOICE_ISSUER is empty" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "variable", ["SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"]
)
def test_production_refuses_to_start_without_a_secret_and_names_it(variable):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != variable}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert f"Set the {variable} environment variable" in result.stderr
    for secret in ("sk_test_secret_never_logged", "whsec_secret_never_logged", PRODUCTION_ENV["SECRET_KEY"]):
        assert secret not in result.stdout + result.stderr


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_compose_services_run_the_procfile_commands_with_one_beat():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    procfile = _procfile()
    assert {"web", "worker", "beat", "db", "redis"} <= set(services)
    for name in ("web", "worker", "beat", "db", "redis"):
        assert "healthcheck" in services[name], name
    web = services["web"]["command"].replace("$$", "$")
    assert procfile["release"] in web and procfile["web"] in web
    assert web.index(procfile["release"]) < web.index(procfile["web"])  # migrations on start
    for name in ("worker", "beat"):
        assert services[name]["command"] == procfile[name]
    assert "deploy" not in services["beat"] or services["beat"]["deploy"].get("replicas", 1) == 1
    for name in ("web", "worker", "beat"):
        assert services[name]["env_file"] == ".env"


def test_procfile_programs_exist_in_the_project():
    procfile = _procfile()
    assert shlex.split(procfile["web"])[1] == "billing_portal.wsgi"
    for name in ("worker", "beat"):
        assert shlex.split(procfile[name])[:3] == ["celery", "-A", "billing_portal"]
