"""`shoal apply / services / rm / scale / history` through click's CliRunner, against the real API app served on
loopback over a fake agent: what they print, what they send, and SPEC's exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from tests.e2e.procs import free_port
from tests.unit.desired.fakes import START_MS, FakeAgent, serving

STACK = "services:\n  web:\n    image: reg/web:1\n    deploy: {replicas: 2}\n  api:\n    image: reg/api:1\n"
NOBODY = f"http://127.0.0.1:{free_port()}"  # nothing listens: a command that asked would exit 3


@pytest.fixture
def node() -> Iterator[tuple[FakeAgent, str]]:
    agent = FakeAgent()
    with serving(agent) as url:
        yield agent, url


def shoal(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "stack.yml"
    path.write_text(text)
    return str(path)


def test_apply_prints_one_line_per_service(node: tuple[FakeAgent, str], tmp_path: Path) -> None:
    _, url = node
    first = shoal("apply", "-f", write(tmp_path, STACK), "--host", url)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == "api: created (generation 1)\nweb: created (generation 1)\n"
    second = shoal("--host", url, "apply", "-f", write(tmp_path, STACK.replace("web:1", "web:2")))
    assert second.stdout == ("api: unchanged (generation 1)\n"
                             "web: updated to generation 2: image reg/web:1 -> reg/web:2\n")


def test_apply_reads_stdin_and_json_prints_only_the_array(node: tuple[FakeAgent, str]) -> None:
    _, url = node
    done = shoal("apply", "-f", "-", "--json", "--host", url, stdin=STACK)
    assert done.exit_code == 0, done.stderr
    assert [(s["name"], s["action"]) for s in json.loads(done.stdout)] == [("api", "created"), ("web", "created")]


def test_apply_sends_the_generations_it_read_as_expectations(node: tuple[FakeAgent, str], tmp_path: Path) -> None:
    agent, url = node
    shoal("apply", "-f", write(tmp_path, STACK), "--host", url)
    agent.remote_write("service/web", 2, agent.store.get("service/web").entry.payload,  # type: ignore[union-attr]
                       "moved on elsewhere", wall_ms=START_MS + 60_000)
    stale = shoal("apply", "-f", write(tmp_path, STACK.replace("web:1", "web:3")), "--host", url,
                  "--expect", "web:1")
    assert stale.exit_code == 1
    assert "error 409" in stale.stderr and "expected generation 1, the cluster holds 2" in stale.stderr
    assert "(field services.web)" in stale.stderr
    fresh = shoal("apply", "-f", write(tmp_path, STACK.replace("web:1", "web:3")), "--host", url)
    assert fresh.exit_code == 0 and "web: updated to generation 3" in fresh.stdout


def test_an_invalid_manifest_exits_1_naming_the_field_without_asking_a_node(tmp_path: Path) -> None:
    done = shoal("apply", "-f", write(tmp_path, STACK + "    deploy: {replicas: many}\n"), "--host", NOBODY)
    assert done.exit_code == 1
    assert done.stderr.startswith("shoal apply: services.api.deploy.replicas: ")
    assert "'many'" in done.stderr and done.stdout == ""


def test_warnings_go_to_stderr(node: tuple[FakeAgent, str], tmp_path: Path) -> None:
    _, url = node
    done = shoal("apply", "-f", write(tmp_path, STACK + "    container_name: a1\n"), "--host", url)
    assert done.exit_code == 0
    assert "warning: services.api.container_name" in done.stderr
    assert "warning" not in done.stdout


def test_apply_usage_errors_exit_2(tmp_path: Path) -> None:
    assert shoal("apply", "--host", NOBODY).exit_code == 2  # -f is required
    assert shoal("apply", "-f", str(tmp_path / "missing.yml"), "--host", NOBODY).exit_code == 2
    assert shoal("apply", "-f", write(tmp_path, STACK), "--expect", "web", "--host", NOBODY).exit_code == 2


def test_services_prints_a_table_or_json(node: tuple[FakeAgent, str], tmp_path: Path) -> None:
    _, url = node
    shoal("apply", "-f", write(tmp_path, STACK + "  agent:\n    image: x:1\n    deploy: {mode: global}\n"),
          "--host", url)
    table = shoal("services", "--host", url).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODE", "REPLICAS", "RUNNING", "READY", "IMAGE", "GENERATION"]
    assert [line.split() for line in table[1:]] == [["agent", "global", "-", "0", "0", "x:1", "1"],
                                                    ["api", "replicated", "1", "0", "0", "reg/api:1", "1"],
                                                    ["web", "replicated", "2", "0", "0", "reg/web:1", "1"]]
    rows = json.loads(shoal("services", "--json", "--host", url).stdout)
    assert [r["name"] for r in rows] == ["agent", "api", "web"]


def test_rm_tries_every_service_and_exits_1_if_one_was_missing(node: tuple[FakeAgent, str], tmp_path: Path) -> None:
    agent, url = node
    shoal("apply", "-f", write(tmp_path, STACK), "--host", url)
    done = shoal("rm", "nope", "web", "--host", url)
    assert done.exit_code == 1
    assert done.stdout == "web: deleted (generation 2)\n"
    assert "service nope does not exist" in done.stderr
    assert agent.store.get("service/web").entry.tombstone  # type: ignore[union-attr]
    assert shoal("rm", "api", "--host", url).exit_code == 0


def test_scale_sets_replicas_and_reports_refusals(node: tuple[FakeAgent, str], tmp_path: Path) -> None:
    _, url = node
    shoal("apply", "-f", write(tmp_path, STACK), "--host", url)
    done = shoal("scale", "web=5", "api=0", "--host", url)
    assert done.exit_code == 0, done.stderr
    assert done.stdout == "web: 5 replicas (generation 2)\napi: 0 replicas (generation 2)\n"
    refused = shoal("scale", "nope=1", "web=2000", "--host", url)
    assert refused.exit_code == 1
    assert "services.web.deploy.replicas" in refused.stderr and "service nope does not exist" in refused.stderr


@pytest.mark.parametrize("arg", ["web", "web=", "=3", "web=-1", "web=x", "web=1.5"])
def test_scale_with_bad_syntax_exits_2_before_any_request(arg: str) -> None:
    done = shoal("scale", "api=1", arg, "--host", NOBODY)
    assert done.exit_code == 2
    assert "SERVICE=N" in done.stderr


def test_history_shows_a_lost_conflict(node: tuple[FakeAgent, str], tmp_path: Path) -> None:
    agent, url = node
    shoal("apply", "-f", write(tmp_path, STACK), "--host", url)
    shoal("apply", "-f", write(tmp_path, STACK.replace("web:1", "web:2")), "--host", url)
    payload = agent.store.get("service/web").entry.payload.replace(b"web:2", b"web:9")  # type: ignore[union-attr]
    agent.remote_write("service/web", 2, payload, "image reg/web:1 -> reg/web:9", wall_ms=START_MS + 60_000)
    lines = shoal("history", "web", "--host", url).stdout.splitlines()
    assert lines[0].split() == ["GENERATION", "AUTHOR", "AT", "OUTCOME", "CHANGE"]
    assert [[*line.split()[:2], line.split()[3]] for line in lines[1:]] == [
        ["2", "n2", "current"], ["2", "n1", "lost"], ["1", "n1", "superseded"]]
    assert "reg/web:1 -> reg/web:2" in lines[2]
    items = json.loads(shoal("history", "web", "--json", "--host", url).stdout)
    assert [i["outcome"] for i in items] == ["current", "lost", "superseded"]


def test_not_found_exits_1_and_no_node_exits_3(node: tuple[FakeAgent, str]) -> None:
    _, url = node
    missing = shoal("history", "nope", "--host", url)
    assert missing.exit_code == 1 and "service nope does not exist" in missing.stderr
    nobody = shoal("services", "--host", NOBODY)
    assert nobody.exit_code == 3 and "no answer" in nobody.stderr
    assert shoal("rm", "web", "--host", NOBODY).exit_code == 3


def test_a_manifest_over_1_mib_exits_1_without_asking_a_node(tmp_path: Path) -> None:
    done = shoal("apply", "-f", write(tmp_path, STACK + "#" * (1 << 20)), "--host", NOBODY)
    assert done.exit_code == 1
    assert "larger than 1048576 bytes (1 MiB)" in done.stderr


@pytest.mark.parametrize("host", ["127.0.0.1:7947", "localhost:7947", "http://", "ftp://node:7947",
                                  "http://127.0.0.1:99999", "http://127.0.0.1:0", "::::", "http://[::1"])
def test_a_host_that_is_not_an_http_url_is_a_usage_error(host: str) -> None:
    done = shoal("services", "--host", host)
    assert done.exit_code == 2, done.output
    assert "is not a URL like http://127.0.0.1:7947" in done.stderr
    assert "Traceback" not in done.output


def test_the_host_may_come_from_the_environment_and_is_checked_there_too() -> None:
    done = CliRunner(env={"SHOAL_HOST": "localhost:7947"}).invoke(cli, ["members"])
    assert done.exit_code == 2, done.output
    assert "'localhost:7947' is not a URL" in done.stderr


def test_host_is_taken_before_after_and_between_a_group_and_its_subcommand(node: tuple[FakeAgent, str]) -> None:
    _, url = node
    for args in (["--host", url, "node", "ls"], ["node", "--host", url, "ls"], ["node", "ls", "--host", url],
                 ["--host", NOBODY, "node", "--host", url, "ls"], ["node", "--host", NOBODY, "ls", "--host", url]):
        done = shoal(*args)
        assert done.exit_code == 0, (args, done.output)
        assert done.stdout.split()[0] == "NAME"
    assert shoal("node", "--host", url, "ls", "--host", NOBODY).exit_code == 3  # the innermost wins
    assert shoal("rollout", "--host", NOBODY, "status", "web").exit_code == 3
