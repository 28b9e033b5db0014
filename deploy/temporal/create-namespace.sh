#!/bin/sh
# The namespace the worker and the CLI use (NAME, with RETENTION for closed workflows' histories),
# made once the server answers, and the cycle's search attributes (BfestYear, BfestStage, BfestTrack) in it;
# what exists already is left as it is.
set -eu
name="${1:-default}"
retention="${2:-30d}"
tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "temporal-namespace: the server at $TEMPORAL_ADDRESS never became healthy"; exit 1; }
  sleep 2
done
if temporal operator namespace describe -n "$name" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
  echo "temporal-namespace: $name exists"
else
  temporal operator namespace create -n "$name" --retention "$retention" --address "$TEMPORAL_ADDRESS"
  echo "temporal-namespace: $name created (retention $retention)"
fi
for attribute in BfestYear:Int BfestStage:Keyword BfestTrack:Keyword; do
  key="${attribute%%:*}"
  if temporal operator search-attribute list -n "$name" --address "$TEMPORAL_ADDRESS" | grep -qw "$key"; then
    echo "temporal-namespace: search attribute $key exists"
  else
    temporal operator search-attribute create -n "$name" --name "$key" --type "${attribute##*:}" --address "$TEMPORAL_ADDRESS"
    echo "temporal-namespace: search attribute $key created"
  fi
done
