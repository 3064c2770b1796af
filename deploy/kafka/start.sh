#!/bin/bash
# envwatch — start the Kafka node of deploy/compose.yaml (apache/kafka image).
# Renders server.properties with the admin password from its secret file, builds the PEM keystore
# from the certificate and key secrets, formats the storage on first start with the admin's
# SCRAM credential (the only user that exists before init.sh runs) and starts the broker.
# Writes the admin client configuration the health check and init.sh use. Prints no secret.
set -euo pipefail
umask 077

KAFKA=/opt/kafka
CONF=/tmp/envwatch-server.properties
ADMIN_PASSWORD="$(cat /run/secrets/kafka_admin_password)"
: "${KAFKA_CLUSTER_ID:?KAFKA_CLUSTER_ID is not set}"
: "${KAFKA_ADVERTISED_HOST:=kafka}"
: "${KAFKA_DEFAULT_PARTITIONS:=4}"
case "$ADMIN_PASSWORD" in
  *[!A-Za-z0-9_-]*|'') echo "kafka_admin_password: use letters, digits, - and _ only" >&2; exit 1;;
esac

cat /run/secrets/kafka_tls_key /run/secrets/kafka_tls_cert > /tmp/envwatch-kafka-keystore.pem
sed -e "s|@ADVERTISED_HOST@|${KAFKA_ADVERTISED_HOST}|" \
    -e "s|@DEFAULT_PARTITIONS@|${KAFKA_DEFAULT_PARTITIONS}|" \
    -e "s|@ADMIN_PASSWORD@|${ADMIN_PASSWORD}|" \
    /opt/envwatch/kafka/server.properties > "$CONF"
bash /opt/envwatch/kafka/client-properties.sh envwatch-admin /run/secrets/kafka_admin_password \
  > /tmp/envwatch-admin.properties

# --ignore-formatted: a restart keeps the existing metadata (and every SCRAM user in it)
"$KAFKA/bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$KAFKA_CLUSTER_ID" \
  --config "$CONF" --add-scram "SCRAM-SHA-512=[name=envwatch-admin,password=${ADMIN_PASSWORD}]" \
  > /dev/null
unset ADMIN_PASSWORD
exec "$KAFKA/bin/kafka-server-start.sh" "$CONF"
