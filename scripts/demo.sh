#!/usr/bin/env bash
# Install hpcwaas into .venv, start the embedded server, and walk the user journey with `waas`.
#
# HPCWAAS_DEMO_ADDR: where the server listens (default 127.0.0.1:9090; change it when that
#   port is taken). HPCWAAS_DEMO_DIR: its data directory (default .hpcwaas-demo).
# Run from a terminal, the server keeps running at the end, for the web portal (its address
# and a login are printed; Ctrl-C stops it). Unattended (no terminal), it is stopped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
DATA="${HPCWAAS_DEMO_DIR:-$ROOT/.hpcwaas-demo}"
ADDR="${HPCWAAS_DEMO_ADDR:-127.0.0.1:9090}"
API="http://$ADDR"
mkdir -p "$DATA"
hpcwaas-api --data_dir "$DATA" -l "$ADDR" 2>"$DATA/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
python - "$API" "$SERVER" "$DATA/server.log" <<'PY'
import os, sys, time, urllib.request
api, pid, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for _ in range(150):
    try:
        urllib.request.urlopen(api + "/healthz", timeout=1)
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(open(log).read() + "\nthe server did not start")
        time.sleep(0.1)
sys.exit(f"the server did not answer on {api} within 15 s; see {log}")
PY
TOKEN="$(hpcwaas-api --data_dir "$DATA" tokens issue --user demo --ttl 1h 2>/dev/null)"
w() { echo "+ waas --api_url $API -t=<token> $*" >&2; waas --api_url "$API" -t="$TOKEN" "$@"; }
w ssh_keys key-gen
w workflows list
w workflows trigger -f -i n=4 -i mode=accurate -i label="demo, run" demo@local@sweep \
  | tee "$DATA/trigger.out"
ID="$(sed -n 's/^Workflow triggered with execution ID: //p' "$DATA/trigger.out")"
w executions logs "$ID"
w executions status "$ID"
echo "Demo finished: execution $ID succeeded. Server log: $DATA/server.log" >&2
if [[ -t 0 && -t 1 ]]; then
  # A password account for the portal's login form, new for each demo.
  PASSWORD="$(python -c 'import secrets; print(secrets.token_urlsafe(12))')"
  hpcwaas-api --data_dir "$DATA" users add demo --password-stdin <<<"$PASSWORD" >/dev/null
  cat >&2 <<EOF

The server keeps running. Open the web portal: $API/ui/
  log in as user "demo" with password "$PASSWORD"
The waas command, from another terminal (. .venv/bin/activate first):
  waas --api_url $API -t=$TOKEN workflows list
Press Ctrl-C to stop the server.
EOF
  wait "$SERVER" || true
fi
