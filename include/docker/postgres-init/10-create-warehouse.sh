#!/bin/bash
# Creates the warehouse database and its owner next to Airflow's metadata database. The postgres image
# runs this once, when it initialises an empty data directory.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
  -v wh_db="${LEDGERLAKE_WAREHOUSE_DB}" -v wh_user="${LEDGERLAKE_WAREHOUSE_USER}" \
  -v wh_password="${LEDGERLAKE_WAREHOUSE_PASSWORD}" <<'SQL'
CREATE ROLE :"wh_user" LOGIN PASSWORD :'wh_password';
CREATE DATABASE :"wh_db" OWNER :"wh_user";
REVOKE ALL ON DATABASE :"wh_db" FROM PUBLIC;
SQL
