#!/bin/bash
# envwatch — print a Kafka client configuration (SASL_SSL, SCRAM-SHA-512, the stack's CA) for
# user $1 whose password is in file $2. Used by start.sh and init.sh for the admin tools.
set -euo pipefail
user="$1"
password="$(cat "$2")"
cat <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${user}" password="${password}";
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/ca_cert
PROPS
