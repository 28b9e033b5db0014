#!/bin/sh
# Temporal's two databases on PostgreSQL, with Temporal's own tool (the admin-tools image of the
# server's version): create each when missing, install the base schema on an empty one, then apply
# every versioned update up to this version. Safe to run again: on an upgrade it only updates.
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD.
set -eu
if [ -n "${SQL_PASSWORD_FILE:-}" ]; then
  SQL_PASSWORD="$(cat "$SQL_PASSWORD_FILE")"
  export SQL_PASSWORD
fi
schemas=/etc/temporal/schema/postgresql/v12
for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  dir="${pair##*:}"
  echo "temporal-schema: $db"
  temporal-sql-tool --db "$db" create-database || echo "temporal-schema: $db exists"
  temporal-sql-tool --db "$db" setup-schema -v 0.0 || echo "temporal-schema: $db has a schema"
  temporal-sql-tool --db "$db" update-schema -d "$schemas/$dir/versioned"
done
echo "temporal-schema: done"
