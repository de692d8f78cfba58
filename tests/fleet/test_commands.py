"""The fleet's commands refuse to start without what they need, with a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import environment, hullscan


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "empty.toml").write_text("")
    return environment(HULLSCAN_CONFIG=str(tmp_path / "empty.toml"), HULLSCAN_DATA_DIR=str(tmp_path / "data"),
                       **extra)


def test_a_worker_without_a_broker_says_which_setting_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in env_for(tmp_path).items() if k != "HULLSCAN_BROKER_URL"}
    result = hullscan("worker", "--queue", "east", env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "HULLSCAN_BROKER_URL" in result.stderr and "Traceback" not in result.stderr


def test_a_worker_queue_name_is_checked(tmp_path: Path) -> None:
    result = hullscan("worker", "--queue", "../east", env=env_for(tmp_path, HULLSCAN_BROKER_URL="redis://127.0.0.1:9/0"),
                      timeout=120)
    assert result.returncode == 2
    assert "--queue" in result.stderr and "Traceback" not in result.stderr


def test_the_fleet_commands_and_their_options_exist(tmp_path: Path) -> None:
    worker = hullscan("worker", "--help", env=env_for(tmp_path), timeout=120)
    assert worker.returncode == 0 and "--queue" in worker.stdout and "--concurrency" in worker.stdout
    scheduler = hullscan("scheduler", "--help", env=env_for(tmp_path), timeout=120)
    assert scheduler.returncode == 0 and "stands by" in scheduler.stdout
