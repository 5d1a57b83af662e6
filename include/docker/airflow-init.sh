#!/usr/bin/env bash
# One-shot set-up of the ledgerlake deployment (the airflow-init service). Every step is idempotent, so
# `docker compose up` may run it again at any time. Secrets come from the environment and are never echoed.
set -euo pipefail

VENUES=(exchangehubx binance pacifica coinbase sunx)  # ledgerlake.schema.VENUES; tests/deployment checks it

echo "migrating the metadata database"
airflow db migrate

# The UI login (FAB auth manager). `users create` leaves an existing user alone, so the password is set
# again each run: .env stays the source of truth.
airflow users create --username "${AIRFLOW_ADMIN_USERNAME}" --password "${AIRFLOW_ADMIN_PASSWORD}" \
  --role Admin --firstname ledgerlake --lastname admin --email "${AIRFLOW_ADMIN_USERNAME}@localhost"
airflow users reset-password --username "${AIRFLOW_ADMIN_USERNAME}" --password "${AIRFLOW_ADMIN_PASSWORD}"

# The pools the DAGs use, declared once in include/pools.json (one per venue, and the warehouse's).
airflow pools import /opt/airflow/include/pools.json

# Connections come from AIRFLOW_CONN_* variables (docker-compose.yaml); fail here, not in the first task,
# if one does not parse. Only ids, types and hosts are printed.
python - "${VENUES[@]}" <<'PY'
import sys

from airflow.models.connection import Connection

conn_ids = ["ledgerlake_s3", "ledgerlake_warehouse", *(f"ledgerlake_{venue}" for venue in sys.argv[1:])]
failed = False
for conn_id in conn_ids:
    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except Exception as exc:  # the message could quote the value; print its type only
        print(f"connection {conn_id}: does not load ({type(exc).__name__}); check AIRFLOW_CONN_{conn_id.upper()}")
        failed = True
        continue
    print(f"connection {conn_id}: {conn.conn_type} {conn.host or ''}")
sys.exit(1 if failed else 0)
PY
echo "ledgerlake deployment initialised"
