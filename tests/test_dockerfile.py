"""No Docker engine runs here, so the Dockerfile's rules are read, and its install command is
the one `.ci/run` executes in a fresh virtualenv."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.startswith("#")]


def test_multi_stage_slim_and_no_compilers_in_the_final_image():
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(bases) == 2 and all(base.startswith("python:") and base.endswith("-slim") for base in bases[:1])
    assert bases[1].endswith("-slim")
    final = DOCKERFILE.split(bases[1], 1)[1]
    assert not re.search(r"apt-get install|gcc|build-essential", final)
    assert "COPY --from=build /opt/rootcheck /opt/rootcheck" in final


def test_runs_as_a_non_root_user_with_a_state_volume_and_healthcheck():
    final = DOCKERFILE.split("FROM python:3.11-slim\n", 1)[1]
    user = re.findall(r"^USER (\S+)", final, re.M)
    assert user and user[-1] not in ("root", "0")
    assert 'VOLUME ["/var/lib/rootcheck"]' in final
    assert "ROOTCHECK_DATABASE_URL=sqlite:////var/lib/rootcheck/rootcheck.db" in final
    assert re.search(r'^HEALTHCHECK .*CMD \["rootcheck", "health"\]', final, re.M)
    assert INSTRUCTIONS[-2:] == ['ENTRYPOINT ["rootcheck"]', 'CMD ["serve"]']


def test_dockerignore_keeps_secrets_and_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "*.db", "tests"} <= set(ignored)


def test_ci_runs_the_dockerfile_install_commands():
    installs = re.findall(r"^RUN /opt/rootcheck/bin/pip install (.+)$", DOCKERFILE, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert len(installs) == 2 and all(f'pip" install -q {install}' in ci for install in installs)


def test_the_image_installs_exactly_the_locked_and_hashed_versions():
    """The image built tomorrow is the one tested today: every dependency pinned, with its hash."""
    from packaging.requirements import Requirement

    installs = re.findall(r"^RUN /opt/rootcheck/bin/pip install (.+)$", DOCKERFILE, re.M)
    assert "--require-hashes -r requirements.lock" in installs[0] and "--no-deps ." in installs[1]
    lock = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", lock, re.M))
    blocks = re.split(r"^(?=[a-z0-9])", lock, flags=re.M)[1:]
    assert blocks and all("--hash=sha256:" in block for block in blocks), "every pin has its hash"
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["postgres"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins and requirement.specifier.contains(pins[name]), f"{spec} is not locked"


def test_health_command_reports_failure_without_a_server(tmp_path):
    import sys

    result = subprocess.run(
        [str(Path(sys.executable).with_name("rootcheck")), "health"],
        capture_output=True,
        env={"PORT": "9", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert result.returncode == 1 and b"/healthz" in result.stderr
