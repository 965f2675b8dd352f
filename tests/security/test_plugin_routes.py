"""A plugin adds an API route with its own permission rules, and a `hub` command group, through the
same hooks as the hub's own resources, without an edit to hub/ (tests/route_plugin.py)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hub.api import create_app
from hub.api.common import HubBlueprint
from hub.access.actors import local_admin
from hub.hookspecs import hookimpl
from hub.runtime import Runtime
from tests import route_plugin
from tests.support.province import FAR, OWN, probe
from tests.support.services import ROOT


def test_a_plugin_route_is_guarded_by_the_rules_it_registers(province: Runtime) -> None:
    province.plugins.register_module(route_plugin, "route_plugin", group="hub.tools")
    keeper = probe(province, "op-notices", ["operator"], [OWN])
    r = keeper.send("GET", f"/api/notices/{OWN}")
    assert r.status_code == 200 and r.get_json() == {"code": OWN, "notice": f"Thông báo của {OWN}"}

    outside = keeper.send("GET", f"/api/notices/{FAR}")  # allowed role, commune outside its areas
    assert outside.status_code == 403 and FAR in outside.get_json()["message"]

    viewer = probe(province, "viewer-notices", ["viewer"], [OWN]).send("GET", f"/api/notices/{OWN}")
    assert viewer.status_code == 403 and "needs administrator or operator" in viewer.get_json()["message"]

    anonymous = create_app(province).test_client().get(f"/api/notices/{OWN}")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    # a method the plugin serves but gave no rule: refused to everyone, and said at start-up
    admin = create_app(province, authenticator=local_admin).test_client()
    r = admin.delete(f"/api/notices/{OWN}")
    assert r.status_code == 403 and "no permission rule" in r.get_json()["message"]
    assert any("route_plugin" in p and "DELETE /api/notices/<string:code>" in p and "refused" in p
               for p in province.plugins.problems), province.plugins.problems
    # and the plugin's route is in the API's description, like the hub's own
    assert "/api/notices/{code}" in admin.get("/api/openapi.json").get_json()["paths"]


def test_a_plugin_blueprint_without_rules_is_not_served_and_is_reported(rt: Runtime) -> None:
    bare = HubBlueprint("unguarded", __name__, url_prefix="/api/unguarded")

    @bare.route("")
    def everything() -> dict[str, str]:
        return {"secret": "should never be served"}

    taken = HubBlueprint("areas", __name__, url_prefix="/api/more-areas")

    @taken.route("")
    def more_areas() -> dict[str, str]:
        return {"secret": "should never be served"}

    rt.plugins.register_module(types.SimpleNamespace(
        register_blueprints=hookimpl(lambda register: register(bare))), "no_rules", group="hub.tools")
    rt.plugins.register_module(types.SimpleNamespace(
        register_blueprints=hookimpl(lambda register: register(taken, {"more_areas": {"GET": ["viewer"]}}))),
        "name_thief", group="hub.tools")
    client = create_app(rt, authenticator=local_admin).test_client()
    for url in ("/api/unguarded", "/api/more-areas"):
        r = client.get(url)
        assert r.status_code == 404 and "secret" not in r.get_data(as_text=True), url
    assert any("no_rules" in p and "unguarded was registered without permission rules" in p
               for p in rt.plugins.problems), rt.plugins.problems
    assert any("name_thief" in p and "areas is already taken" in p for p in rt.plugins.problems)
    assert client.get("/api/health").status_code == 200  # the hub's own routes still served


def test_rules_naming_an_unknown_role_are_refused_and_a_second_declaration_cannot_widen(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.access import permissions

    monkeypatch.setattr(permissions, "PERMISSIONS", {})
    monkeypatch.setattr(permissions, "PUBLIC_ENDPOINTS", {})
    with pytest.raises(permissions.RuleError, match="unknown role superuser"):
        permissions.declare("bulletins", {"Bulletins": {"GET": {"superuser"}}})
    with pytest.raises(permissions.RuleError, match="set of roles"):
        permissions.declare("bulletins", {"Bulletins": {"GET": "viewer"}})  # a string is not a set of roles
    assert permissions.declare("bulletins", {"Bulletins": {"GET": permissions.ADMINISTRATORS}}) is None
    assert permissions.declare("bulletins", {"Bulletins": {"GET": permissions.ADMINISTRATORS}}) is None  # again
    problem = permissions.declare("bulletins", {"Bulletins": {"GET": permissions.ANYONE, "POST": permissions.PUBLIC}})
    assert problem and "only what both allow" in problem
    assert permissions.allowed_roles("bulletins.Bulletins", "GET") == permissions.ADMINISTRATORS
    assert permissions.allowed_roles("bulletins.Bulletins", "POST") is None
    assert not permissions.is_public("bulletins.Bulletins", "POST")


def installed(tmp_path: Path, name: str, module: str) -> dict[str, str]:
    """The environment of a `hub` that finds `module` as a third party's plugin: an entry point in
    a distribution's metadata on its path."""
    dist = tmp_path / f"hub_{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: hub-{name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[hub.tools]\n{name} = {module}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}


def hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=env)


def test_a_plugin_command_group_appears_in_hub_help_and_runs(tmp_path: Path) -> None:
    env = installed(tmp_path, "route_plugin", "tests.route_plugin")
    r = hub(env, "--help")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    listed = {line.split()[0] for line in r.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert {"notices", "send", "serve", "users", "import", "ingest", "worker"} <= listed
    assert "Notices pinned to an area" in r.stdout
    r = hub(env, "notices", "show", "80")
    assert r.returncode == 0 and r.stdout == "notice of 80: Thông báo của 80\n", r.stderr


def test_a_plugin_cannot_replace_a_hub_command(tmp_path: Path) -> None:
    env = installed(tmp_path, "clashing_plugin", "tests.clashing_plugin")
    r = hub(env, "send", "--help")
    assert r.returncode == 0 and "Send VERB" in r.stdout and "taken over" not in r.stdout
    assert "clashing_plugin: `hub send` is already taken" in r.stderr
    assert "clashing_plugin: `hub serve` is already taken" in r.stderr
    assert "Run the REST API" in hub(env, "serve", "--help").stdout


def test_the_samples_of_the_guide_make_a_working_plugin(rt: Runtime, legacy_areas: None) -> None:
    """docs/routes-and-commands.md's two samples, run as they are and registered as one plugin."""
    text = (ROOT / "docs/routes-and-commands.md").read_text(encoding="utf-8")
    samples = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert len(samples) == 2
    plugin = types.ModuleType("guide_plugin")
    for code in samples:
        exec(compile(code, "docs/routes-and-commands.md", "exec"), plugin.__dict__)  # noqa: S102 - our own docs
    rt.plugins.register_module(plugin, "guide_plugin", group="hub.tools")
    r = create_app(rt, authenticator=local_admin).test_client().get("/api/noticeboard/80")
    assert r.status_code == 200 and r.get_json() == {"code": "80"}
    assert create_app(rt).test_client().get("/api/noticeboard/80").status_code == 401
    [command] = [reg.item for reg in rt.plugins.cli_groups() if reg.plugin == "guide_plugin"]
    group = click.Group("hub", commands=[command])
    assert "Notices pinned to an area" in CliRunner().invoke(group, ["--help"]).output
