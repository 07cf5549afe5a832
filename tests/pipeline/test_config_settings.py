"""CLI settings: flag > config file > environment > default, with provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline._cli import main
from pipeline._settings import CLI_DEFAULTS, config_files, resolve_settings


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
    assert settings.llm_config() == {"model": "phi3"}
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
    assert set(data["values"]) == set(CLI_DEFAULTS)
    assert data["sources"]["tts"] == "default"

    (tmp_path / "speakstream.toml").write_text("workers = 99\n")
    assert main(["config"]) == 2
    assert "workers must be an integer" in capsys.readouterr().err
