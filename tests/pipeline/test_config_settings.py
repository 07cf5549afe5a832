"""CLI settings: flag > config file > environment > default, with provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import ConfigError
from pipeline._cli import main
from pipeline._settings import (
    DEFAULTS,
    SERVE_KEYS,
    SERVE_OUTPUT_DIR,
    config_files,
    resolve_settings,
)
from pipeline.daemon import DaemonSettings


def test_defaults_are_the_embedded_model_and_auto_tts(tmp_path: Path) -> None:
    settings = resolve_settings(cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert settings.values["llm"] == "local" and settings.values["tts"] == "auto"
    assert settings.values["play"] is True
    assert set(settings.sources.values()) == {"default"}
    assert settings.files == ()
    assert settings.streaming_config().play is True


def test_precedence_flag_over_file_over_env_over_default(tmp_path: Path) -> None:
    (tmp_path / "speakstream.toml").write_text(
        'llm = "ollama"\nmodel = "llama3.2"\nworkers = 3\nmax_buffer_time = "none"\n'
    )
    env = {
        "HOME": str(tmp_path),
        "SPEAKSTREAM_LLM": "openai",
        "SPEAKSTREAM_TTS": "espeak",
        "SPEAKSTREAM_PLAY": "0",
        "SPEAKSTREAM_WORKERS": "5",
    }
    settings = resolve_settings({"model": "phi3", "voice": None}, cwd=tmp_path, env=env)
    file_source = f"file {tmp_path / 'speakstream.toml'}"
    assert (settings.values["llm"], settings.sources["llm"]) == ("ollama", file_source)
    assert (settings.values["model"], settings.sources["model"]) == ("phi3", "flag")
    assert (settings.values["tts"], settings.sources["tts"]) == ("espeak", "env SPEAKSTREAM_TTS")
    assert (settings.values["play"], settings.sources["play"]) == (False, "env SPEAKSTREAM_PLAY")
    assert (settings.values["workers"], settings.sources["workers"]) == (3, file_source)
    assert settings.values["max_buffer_time"] is None
    assert settings.sources["voice"] == "default"  # a None flag is "not given"
    assert settings.llm_config() == {"model": "phi3", "first_token_timeout": 120.0,
                                     "idle_timeout": 60.0}
    cfg = settings.streaming_config()
    assert (cfg.workers, cfg.play, cfg.max_buffer_time) == (3, False, None)


def test_user_config_dir_is_read_and_cwd_wins(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "speakstream"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('tts = "pyttsx3"\nformat = "mp3"\n')
    cwd = tmp_path / "project"
    cwd.mkdir()
    (cwd / "speakstream.toml").write_text('format = "ogg"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert config_files(cwd, env) == [user / "config.toml", cwd / "speakstream.toml"]
    settings = resolve_settings(cwd=cwd, env=env)
    assert settings.values["tts"] == "pyttsx3" and settings.values["format"] == "ogg"
    assert settings.sources["format"] == f"file {cwd / 'speakstream.toml'}"


@pytest.mark.parametrize(
    ("content", "env", "needle"),
    [
        ('bogus = 1\n', {}, "'bogus'"),
        ("workers = \n", {}, "invalid TOML"),
        ("", {"SPEAKSTREAM_WORKERS": "many"}, "workers from environment variable"),
        ("", {"SPEAKSTREAM_PLAY": "perhaps"}, "play from environment variable"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, content: str, env: dict, needle: str) -> None:
    (tmp_path / "speakstream.toml").write_text(content)
    with pytest.raises(ValueError, match=needle):
        resolve_settings(cwd=tmp_path, env={"HOME": str(tmp_path), **env})


def test_out_of_range_value_fails_when_building_the_config(tmp_path: Path) -> None:
    (tmp_path / "speakstream.toml").write_text("workers = 0\n")
    settings = resolve_settings(cwd=tmp_path, env={"HOME": str(tmp_path)})
    with pytest.raises(ValueError, match=r"workers must be an integer in \[1, 32\], got 0"):
        settings.streaming_config()


def test_config_command_prints_values_and_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("SPEAKSTREAM_VOICE", "en-us")
    (tmp_path / "speakstream.toml").write_text('llm = "ollama"\n')
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert f"# config files: {tmp_path / 'speakstream.toml'}" in out
    assert f'llm                      = "ollama"  # file {tmp_path / "speakstream.toml"}' in out
    assert 'voice                    = "en-us"  # env SPEAKSTREAM_VOICE' in out
    assert main(["config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["values"]) == set(DEFAULTS)
    assert data["sources"]["tts"] == "default"

    (tmp_path / "speakstream.toml").write_text("workers = 99\n")
    assert main(["config"]) == 2
    assert "workers must be an integer" in capsys.readouterr().err


# -- one resolver for every command (issue 10 item 1) ------------------------------


OLLAMA_FILE = 'llm = "ollama"\nmodel = "llama3.2"\nbase_url = "http://127.0.0.1:11434"\n'


def test_model_and_base_url_written_for_another_llm_are_dropped_with_notes(
    tmp_path: Path,
) -> None:
    (tmp_path / "speakstream.toml").write_text(OLLAMA_FILE)
    env = {"HOME": str(tmp_path)}
    kept = resolve_settings(cwd=tmp_path, env=env)
    assert (kept.values["model"], kept.notes) == ("llama3.2", ())
    switched = resolve_settings({"llm": "local"}, cwd=tmp_path, env=env)
    assert switched.values["model"] is None and switched.values["base_url"] is None
    assert switched.sources["model"] == switched.sources["base_url"] == "default"
    assert [n.split(" from ")[0] for n in switched.notes] == [
        "model = 'llama3.2'", "base_url = 'http://127.0.0.1:11434'"]
    assert switched.llm_config() == {"first_token_timeout": 120.0, "idle_timeout": 60.0}


def test_a_model_set_without_llm_stays_with_the_flag_llm(tmp_path: Path) -> None:
    (tmp_path / "speakstream.toml").write_text('model = "llama3.2"\n')
    settings = resolve_settings({"llm": "ollama"}, cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert settings.values["model"] == "llama3.2" and settings.notes == ()


def test_base_url_for_local_note_from_file_error_from_flag(tmp_path: Path) -> None:
    (tmp_path / "speakstream.toml").write_text('base_url = "http://127.0.0.1:1"\n')
    env = {"HOME": str(tmp_path)}
    settings = resolve_settings(cwd=tmp_path, env=env)
    assert settings.values["base_url"] is None
    assert settings.notes[0].endswith("is ignored: llm 'local' takes no base_url")
    with pytest.raises(ConfigError, match="--base-url does not apply to llm 'local'"):
        resolve_settings({"base_url": "http://x"}, cwd=tmp_path, env=env)


def test_serve_keys_have_daemon_defaults_and_the_same_precedence(tmp_path: Path) -> None:
    (tmp_path / "speakstream.toml").write_text(
        'port = 9000\ncors_origins = ["http://a.test"]\nidle_timeout = "none"\n'
        'tts = "espeak"\nmax_llm_clients = 4\n')
    env = {"HOME": str(tmp_path), "SPEAKSTREAM_TOKEN": "env-token-123",
           "SPEAKSTREAM_PORT": "9001", "SPEAKSTREAM_MAX_MESSAGE_CHARS": "500"}
    settings = resolve_settings({"port": 9002}, cwd=tmp_path, env=env)
    defaults = DaemonSettings()
    for key in SERVE_KEYS:
        assert key in DEFAULTS
    assert DEFAULTS["max_body_bytes"] == defaults.max_body_bytes
    daemon = settings.daemon_settings()
    assert (daemon.port, daemon.token, daemon.cors_origins) == (
        9002, "env-token-123", ("http://a.test",))
    assert daemon.max_message_chars == 500 and daemon.max_llm_clients == 4
    assert (daemon.llm_provider, daemon.tts_provider) == ("local", "espeak")
    assert daemon.llm_config == {"first_token_timeout": 120.0, "idle_timeout": None}
    assert daemon.streaming_config.play is False
    assert str(daemon.output_dir) == SERVE_OUTPUT_DIR == "speakstream-daemon"
    assert daemon.sources["tts"] == f"file {tmp_path / 'speakstream.toml'}"
    assert daemon.sources["token"] == "env SPEAKSTREAM_TOKEN"
    assert settings.public_values()["token"] == "***"


def test_cors_origins_from_the_environment_are_comma_separated(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SPEAKSTREAM_CORS_ORIGINS": "http://a.test, http://b.test"}
    settings = resolve_settings(cwd=tmp_path, env=env)
    assert settings.values["cors_origins"] == ("http://a.test", "http://b.test")


def test_bad_serve_values_name_the_key_and_the_source(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SPEAKSTREAM_WS_PING_S": "0"}
    with pytest.raises(ConfigError, match=r"ws_ping_s must be .* \(from env "
                                          r"SPEAKSTREAM_WS_PING_S\)"):
        resolve_settings(cwd=tmp_path, env=env).daemon_settings()
    with pytest.raises(ConfigError, match="idle_timeout"):
        resolve_settings({"idle_timeout": -1.0}, cwd=tmp_path,
                         env={"HOME": str(tmp_path)}).llm_config()
