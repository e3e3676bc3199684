#!/usr/bin/env bash
# Install hpcwaas with its test tools into .venv, what the SSO tests run (Debian's
# chromium, Node.js and the npm package oidc-provider in tests/oidc) and what the loopback
# test cluster of tests/cluster_support.py runs (Debian's openssh-server, munge and Slurm),
# then lint and run every test. Each install step is skipped when its result is already there.
set -euo pipefail
TEST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Run a command as root: directly, or through sudo for a developer who is not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    echo "test.sh: not root, running with sudo: $*" >&2
    sudo "$@"
  else
    echo "test.sh: this needs root and there is no sudo; run as root: $*" >&2
    return 1
  fi
}

# System packages (Debian 12): chromium for the browser tests, node/npm for the OIDC provider,
# sshd, munge and Slurm 22.05 for the test cluster (the tests start them, not apt).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
for package in openssh-server munge slurm-wlm slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "test.sh: warning: oidc-provider 9 wants Node.js 20 or newer, this is $(node --version)" >&2
fi

# The npm package oidc-provider, at the version tests/oidc/package.json pins (no lock file).
OIDC_DIR="$TEST_ROOT/tests/oidc"
version_of() { node -e 'try { console.log(require(process.argv[1]).version) } catch { }' "$1"; }
wanted="$(node -e 'console.log(require(process.argv[1]).dependencies["oidc-provider"])' "$OIDC_DIR/package.json")"
if [ "$(version_of "$OIDC_DIR/node_modules/oidc-provider/package.json")" != "$wanted" ]; then
  echo "test.sh: installing oidc-provider $wanted with npm in tests/oidc" >&2
  (cd "$OIDC_DIR" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi

HPCWAAS_EXTRAS=",test" source "$TEST_ROOT/scripts/bootstrap.sh"
cd "$ROOT"
ruff check src tests
ruff format --check src tests
mypy
# pytest exits 5 when it collected no test: that is a failure here, as any non-zero exit.
python -m pytest "$@"
