#!/bin/bash
# envwatch — InfluxDB 2 first-start script (deploy/compose.yaml mounts it into
# /docker-entrypoint-initdb.d; the influxdb image runs it once, after its DOCKER_INFLUXDB_INIT_*
# set-up, with the influx CLI configured as the admin).
#
# Creates two tokens scoped to the envwatch bucket and writes them to /var/lib/envwatch-tokens
# (the influx-tokens volume, mounted only into influxdb, the workers and Grafana; mode 0644 as
# they run as other users: envwatch uid 10001, Grafana uid 472):
#   envwatch-write.token  write only: the workers' sink (ENVWATCH_INFLUX_TOKEN_FILE)
#   grafana-read.token    read only: Grafana's datasource
# The admin token stays with the operator (deploy/secrets/influxdb-admin.token). Prints no token.
set -euo pipefail
umask 022

OUT=/var/lib/envwatch-tokens
ORG="${DOCKER_INFLUXDB_INIT_ORG:?}"
BUCKET="${DOCKER_INFLUXDB_INIT_BUCKET:?}"
mkdir -p "$OUT"

bucket_id="$(influx bucket list --org "$ORG" --name "$BUCKET" --hide-headers | awk 'NR==1 {print $1}')"
[ -n "$bucket_id" ] || { echo "bucket $BUCKET not found" >&2; exit 1; }

token_of() {  # the "token" field of `influx auth create --json`
  sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' | head -n 1
}

make_token() {  # file description permission-flag
  local file="$OUT/$1" token
  if [ -s "$file" ]; then return 0; fi
  token="$(influx auth create --org "$ORG" --description "$2" "$3" "$bucket_id" --json | token_of)"
  [ -n "$token" ] || { echo "could not create the token $2" >&2; exit 1; }
  printf '%s\n' "$token" > "$file.tmp"
  mv "$file.tmp" "$file"
  echo "token $2 written to $file"
}

make_token envwatch-write.token envwatch-sink-write --write-bucket
make_token grafana-read.token grafana-read --read-bucket
chmod 0644 "$OUT"/*.token
