#!/usr/bin/env bash
# Install what the tests need outside the Python venv, each step skipped when its result is
# already there. Arguments name the parts; none means every part (what scripts/test.sh runs):
#   sso      Debian's chromium, Node.js and npm, and the npm package oidc-provider in tests/oidc
#            (the SSO tests' browser and identity provider)
#   cluster  Debian's openssh-server, munge, Slurm 22.05 (slurm-wlm, slurmctld, slurmd,
#            slurm-client) and its accounting (slurmdbd, on mariadb-server): the loopback test
#            cluster of tests/cluster_support.py, which the tests start themselves (not apt)
#   postgres Debian's postgresql-15 (binaries in /usr/lib/postgresql/15/bin): the throwaway
#            PostgreSQL server of tests/pg_support.py, which the tests start themselves
#   bench    Debian's wrk (the HTTP load generator of tests/bench) and util-linux's taskset
# Needs root, or sudo for a developer who is not root.
set -euo pipefail
TEST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="$(basename "${BASH_SOURCE[0]}")"

sso=false
cluster=false
postgres=false
bench=false
[ "$#" -gt 0 ] || set -- sso cluster postgres
for part in "$@"; do
  case "$part" in
    sso) sso=true ;;
    cluster) cluster=true ;;
    postgres) postgres=true ;;
    bench) bench=true ;;
    *)
      echo "$NAME: unknown part '$part' (sso, cluster, postgres, bench)" >&2
      exit 2
      ;;
  esac
done

# Run a command as root: directly, or through sudo for a developer who is not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    echo "$NAME: not root, running with sudo: $*" >&2
    sudo "$@"
  else
    echo "$NAME: this needs root and there is no sudo; run as root: $*" >&2
    return 1
  fi
}

# System packages (Debian 12), installed with one apt-get run.
missing=()
# The TLS tests name a CA file by its subject hash (`openssl x509 -hash`).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if $sso; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if $cluster; then
  for package in openssh-server munge slurm-wlm slurmctld slurmd slurm-client slurmdbd \
    mariadb-server; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$package")
  done
fi
if $postgres; then
  # Debian 12's PostgreSQL is 15; the tests run its binaries from this directory.
  [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
fi
if $bench; then
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "$NAME: installing ${missing[*]} with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if $sso; then
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "$NAME: warning: oidc-provider 9 wants Node.js 20 or newer, this is $(node --version)" >&2
  fi
  # The npm package oidc-provider, at the version tests/oidc/package.json pins (no lock file).
  OIDC_DIR="$TEST_ROOT/tests/oidc"
  version_of() { node -e 'try { console.log(require(process.argv[1]).version) } catch { }' "$1"; }
  wanted="$(node -e 'console.log(require(process.argv[1]).dependencies["oidc-provider"])' "$OIDC_DIR/package.json")"
  if [ "$(version_of "$OIDC_DIR/node_modules/oidc-provider/package.json")" != "$wanted" ]; then
    echo "$NAME: installing oidc-provider $wanted with npm in tests/oidc" >&2
    (cd "$OIDC_DIR" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
  fi
fi
