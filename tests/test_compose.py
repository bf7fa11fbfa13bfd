"""Docker cannot run here, so the production shape is checked by reading it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_SOURCE = (ROOT / "crm" / "settings.py").read_text(encoding="utf-8")
SETTINGS_VARIABLES = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', SETTINGS_SOURCE))
# Variables the compose file uses for its own services, not read by the application.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_INITDB_ARGS"}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_has_the_production_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "C.UTF-8" in services["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]


def test_app_services_use_the_settings_variables() -> None:
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert set(environment) <= SETTINGS_VARIABLES, name
        assert {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"} <= set(environment)
        assert services[name]["env_file"] == ".env"


def test_env_example_names_only_known_variables() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    names = {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")}
    assert names - COMPOSE_ONLY <= SETTINGS_VARIABLES
    assert {"SECRET_KEY", "ALLOWED_HOSTS"} <= names


def test_dockerfile_builds_the_image_compose_runs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "FROM python:3.11" in dockerfile
    assert _compose()["x-app"]["build"] == "."
