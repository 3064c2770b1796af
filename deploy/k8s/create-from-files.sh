#!/bin/bash
# envwatch — create (or update) the ConfigMaps and Secrets the Kubernetes base refers to but does
# not generate, from the same files deploy/compose.yaml uses: the catalogue (deploy/config), the
# Grafana provisioning and dashboards (deploy/grafana) and deploy/secrets/ (its README says how
# to make them). Secrets go straight to the cluster (kubectl apply of a --dry-run render on a
# pipe); nothing is written to disk or printed.
#
#   deploy/k8s/create-from-files.sh NAMESPACE
set -euo pipefail
NS="${1:?usage: create-from-files.sh NAMESPACE}"
DEPLOY="$(cd "$(dirname "$0")/.." && pwd)"
S="$DEPLOY/secrets"

apply() {  # kind name args…
  local kind="$1" name="$2"
  shift 2
  kubectl -n "$NS" create "$kind" "$name" "$@" --dry-run=client -o yaml | kubectl -n "$NS" apply -f - > /dev/null
  echo "$kind $name applied"
}

apply configmap envwatch-catalogue --from-file="$DEPLOY/config"
apply configmap envwatch-grafana-provisioning \
  --from-file=influxdb.yaml="$DEPLOY/grafana/provisioning/datasources/influxdb.yaml" \
  --from-file=envwatch.yaml="$DEPLOY/grafana/provisioning/dashboards/envwatch.yaml"
apply configmap envwatch-grafana-dashboards --from-file="$DEPLOY/grafana/dashboards"

apply secret generic envwatch-ca --from-file=ca.crt="$S/ca.crt"
for svc in mosquitto kafka influxdb grafana; do
  apply secret tls "envwatch-$svc-tls" --cert="$S/$svc.crt" --key="$S/$svc.key"
done
apply secret generic envwatch-mqtt-broker \
  --from-file=mosquitto.conf="$S/mqtt/mosquitto.conf" \
  --from-file=passwd="$S/mqtt/passwd" --from-file=acl="$S/mqtt/acl"
apply secret generic envwatch-mqtt-passwords --from-file="$S/mqtt/passwords"
apply secret generic envwatch-kafka-passwords \
  --from-file=admin="$S/kafka-admin.password" --from-file=bridge="$S/kafka-bridge.password" \
  --from-file=gateway="$S/kafka-gateway.password" --from-file=worker="$S/kafka-worker.password" \
  --from-file=api="$S/kafka-api.password" --from-file=notify="$S/kafka-notify.password"
apply secret generic envwatch-influxdb-admin \
  --from-file=password="$S/influxdb-admin.password" --from-file=token="$S/influxdb-admin.token"
apply secret generic envwatch-grafana-admin --from-file=password="$S/grafana-admin.password"
if [ -f "$S/gateway.env" ]; then
  apply secret generic envwatch-gateway-env --from-env-file="$S/gateway.env"
fi
if [ -f "$S/notify.env" ]; then
  apply secret generic envwatch-notify-env --from-env-file="$S/notify.env"
fi
apply secret generic envwatch-api-principals --from-file="$S/api"
# After InfluxDB's first start (docs/deploy.md "Kubernetes"): the write and read tokens
if [ -f "$S/influxdb-tokens/envwatch-write.token" ]; then
  apply secret generic envwatch-influxdb-tokens --from-file="$S/influxdb-tokens"
fi
