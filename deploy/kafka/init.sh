#!/bin/bash
# envwatch — one-shot set-up of the stack's Kafka (deploy/compose.yaml service kafka-init; the
# Kubernetes Job kafka-init runs it too). Idempotent: run it again after a change.
#
#  1. topics: envwatch's topics (streams/topics.py EXTERNAL and STATE) with ENVWATCH_PARTITIONS
#     partitions; the checkpoint/ledger topics and plan-progress compacted (as ensure_topics);
#  2. SCRAM-SHA-512 users, one per principal, password from /run/secrets/kafka_<name>_password
#     (a rerun with a changed file rotates the password);
#  3. ACLs per principal (the ACLS table below): what each process reads and writes, nothing else.
#
# Never prints a password. tests/deploy/test_stack.py checks the tables against streams/topics.py
# and the principals' rights against the issue's access rules.
set -euo pipefail
umask 077

BIN=/opt/kafka/bin
BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
PARTITIONS="${KAFKA_PARTITIONS:-4}"
RF="${KAFKA_REPLICATION_FACTOR:-1}"
PREFIX="${KAFKA_TOPIC_PREFIX:-}"
ADMIN=/tmp/envwatch-init-admin.properties
bash /opt/envwatch/kafka/client-properties.sh envwatch-admin /run/secrets/kafka_admin_password > "$ADMIN"

# ---------------------------------------------------------------- topics (streams/topics.py)
TOPICS=(readings aggregates evaluations alert-events notifications dead-letter alert-commands plan-progress)
STATE_TOPICS=(evaluate-state locality-state alerts-state notify-ledger)
COMPACTED=(evaluate-state locality-state alerts-state notify-ledger plan-progress)

is_compacted() {
  local t
  for t in "${COMPACTED[@]}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

for t in "${TOPICS[@]}" "${STATE_TOPICS[@]}"; do
  args=(--bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN" --create --if-not-exists
        --topic "${PREFIX}${t}" --partitions "$PARTITIONS" --replication-factor "$RF")
  if is_compacted "$t"; then args+=(--config cleanup.policy=compact); fi
  "$BIN/kafka-topics.sh" "${args[@]}"
done

# ---------------------------------------------------------------- SCRAM users
PRINCIPALS=(envwatch-bridge envwatch-gateway envwatch-worker envwatch-api envwatch-notify)
for user in "${PRINCIPALS[@]}"; do
  file="/run/secrets/kafka_${user#envwatch-}_password"
  password="$(cat "$file")"
  case "$password" in
    *[!A-Za-z0-9_-]*|'') echo "$file: use letters, digits, - and _ only" >&2; exit 1;;
  esac
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN" --alter \
    --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[password=${password}]" > /dev/null
  echo "SCRAM user $user set"
done
unset password

# ---------------------------------------------------------------- ACLs
# principal  operation  resource  name  [prefixed]
# "*" as a topic name = every topic of TOPICS and STATE_TOPICS (each as a literal ACL);
# topic names get KAFKA_TOPIC_PREFIX; the prefixed rows are Faust's own topics
# (<app id>-__assignor-__leader …); the groups are the app ids (ENVWATCH_APP_ID).
ACLS="
envwatch-bridge   Describe        topic    *
envwatch-bridge   Write           topic    readings
envwatch-bridge   Write           topic    dead-letter
envwatch-bridge   IdempotentWrite cluster  kafka-cluster
envwatch-gateway  Describe        topic    *
envwatch-gateway  Write           topic    readings
envwatch-gateway  Write           topic    dead-letter
envwatch-worker   Describe        topic    *
envwatch-worker   Create          topic    *
envwatch-worker   Read            topic    readings
envwatch-worker   Read            topic    aggregates
envwatch-worker   Read            topic    evaluations
envwatch-worker   Read            topic    dead-letter
envwatch-worker   Read            topic    alert-events
envwatch-worker   Read            topic    alert-commands
envwatch-worker   Read            topic    plan-progress
envwatch-worker   Read            topic    evaluate-state
envwatch-worker   Read            topic    locality-state
envwatch-worker   Read            topic    alerts-state
envwatch-worker   Write           topic    aggregates
envwatch-worker   Write           topic    evaluations
envwatch-worker   Write           topic    dead-letter
envwatch-worker   Write           topic    alert-events
envwatch-worker   Write           topic    alert-commands
envwatch-worker   Write           topic    plan-progress
envwatch-worker   Write           topic    evaluate-state
envwatch-worker   Write           topic    locality-state
envwatch-worker   Write           topic    alerts-state
envwatch-worker   All             topic    envwatch-__  prefixed
envwatch-worker   Read            group    envwatch
envwatch-notify   Describe        topic    *
envwatch-notify   Create          topic    *
envwatch-notify   Read            topic    alert-events
envwatch-notify   Read            topic    notifications
envwatch-notify   Read            topic    notify-ledger
envwatch-notify   Write           topic    notifications
envwatch-notify   Write           topic    notify-ledger
envwatch-notify   Write           topic    aggregates
envwatch-notify   Write           topic    evaluations
envwatch-notify   All             topic    envwatch-notify-__  prefixed
envwatch-notify   Read            group    envwatch-notify
envwatch-api      Describe        topic    *
envwatch-api      Read            topic    alert-events
envwatch-api      Read            topic    alert-commands
envwatch-api      Read            topic    notifications
envwatch-api      Read            topic    plan-progress
envwatch-api      Write           topic    aggregates
"

acl() {  # principal operation resource name [prefixed]
  local args=(--bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN" --add
              --allow-principal "User:$1" --operation "$2")
  case "$3" in
    topic)   args+=(--topic "$4");;
    group)   args+=(--group "$4");;
    cluster) args+=(--cluster);;
    *) echo "unknown resource $3" >&2; exit 1;;
  esac
  if [ "${5:-}" = prefixed ]; then args+=(--resource-pattern-type prefixed); fi
  "$BIN/kafka-acls.sh" "${args[@]}" > /dev/null
}

while read -r principal operation resource name pattern; do
  [ -n "${principal:-}" ] || continue
  if [ "$resource" = topic ] && [ "$name" = "*" ]; then
    for t in "${TOPICS[@]}" "${STATE_TOPICS[@]}"; do acl "$principal" "$operation" topic "${PREFIX}${t}"; done
  elif [ "$resource" = topic ] && [ "${pattern:-}" != prefixed ]; then
    acl "$principal" "$operation" topic "${PREFIX}${name}"
  else
    acl "$principal" "$operation" "$resource" "$name" "${pattern:-}"
  fi
done <<< "$ACLS"
echo "ACLs set for ${PRINCIPALS[*]}"
echo "kafka-init done: ${#TOPICS[@]} + ${#STATE_TOPICS[@]} topics, ${PARTITIONS} partitions each"
