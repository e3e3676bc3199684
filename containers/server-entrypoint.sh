#!/bin/sh
# Entry point of the server image: the config file if one is mounted, else the embedded
# default listening on all interfaces of the container. Arguments go to hpcwaas-api.
set -eu
config="${HPCWAAS_CONFIG:-/etc/hpcwaas/hpcwaas-api.yml}"
if [ -f "$config" ]; then
  exec hpcwaas-api --config "$config" "$@"
fi
exec hpcwaas-api --data_dir "${HPCWAAS_DATA_DIR:-/var/lib/hpcwaas}" -l "${HPCWAAS_LISTEN:-0.0.0.0:9090}" "$@"
