"""The nginx template, its renderer and compose.yaml agree with each other and the settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tsapi.config import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import nginx_conf  # noqa: E402
from nginx_server import NGINX  # noqa: E402


def test_rendered_config_is_accepted_by_nginx(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf.render(tmp_path, "127.0.0.1:1", ["127.0.0.1:2", "127.0.0.1:3"]))
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "e.log"),
                             "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = conf.read_text()
    assert re.findall(r"^ *server (\S+) max_fails=1 fail_timeout=5s;", text, re.M) == [
        "127.0.0.1:2", "127.0.0.1:3"]
    assert f"client_max_body_size {Settings.TSAPI_MAX_BODY_BYTES};" in text


def test_only_json_ingest_and_query_are_retried_after_a_node_failure():
    text = nginx_conf.TEMPLATE.read_text()
    retrying = re.findall(r"location ([^{]+)\{[^}]*non_idempotent", text)
    assert [r.strip() for r in retrying] == ["~ ^/(ingest|query)$"]


def test_renderer_refuses_no_nodes(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        nginx_conf.render(tmp_path, "127.0.0.1:1", [])


def test_compose_gives_nginx_every_placeholder_and_the_api_its_proxy_settings():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", nginx_conf.TEMPLATE.read_text()))
    nginx_env = services["nginx"]["environment"]
    assert placeholders <= set(nginx_env)
    assert int(nginx_env["TSAPI_MAX_BODY_BYTES"]) == Settings.TSAPI_MAX_BODY_BYTES
    api_env = services["api"]["environment"]
    assert api_env["TSAPI_TRUSTED_PROXIES"] == "1"
    assert "@db-replica:" in api_env["DATABASE_READ_URL"]
    assert "ports" not in services["api"]  # clients reach the API only through nginx


@pytest.mark.parametrize("nodes", ["0", "abc", "100"])
def test_dev_up_refuses_a_bad_node_count_before_doing_anything(nodes):
    result = subprocess.run([str(ROOT / "tools" / "dev"), "up", "--nodes", nodes],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--nodes must be a number from 1 to 99" in result.stderr


def test_tier_cost_reads_cpu_of_a_process_tree_and_finds_tools_dev_pid_files(tmp_path):
    import tier_cost

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in tier_cost.tree(os.getpid())
        assert tier_cost.cpu_seconds(os.getpid()) > 0
        assert tier_cost.cpu_seconds(2**22 + 1) == 0.0  # no such process
        (tmp_path / "nginx").mkdir()
        (tmp_path / "nginx" / "nginx.pid").write_text(f"{os.getpid()}\n")
        (tmp_path / "nginx" / "node-1.pid").write_text(f"{child.pid}\n")
        (tmp_path / "nginx" / "node-2.pid").write_text("not a pid\n")
        assert tier_cost.discover(tmp_path) == {"nginx": [os.getpid()], "gunicorn": [child.pid]}
    finally:
        child.kill()
        child.wait()
