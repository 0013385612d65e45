#!/usr/bin/env bash
# Roles and databases of the compose stack, with the passwords from astro/.env (the local stack
# creates the same in stack.sh, with generated passwords). Run once by the postgres image at initdb.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
  -v gpubroker_password="$GPUBROKER_DB_PASSWORD" -v airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE gpubroker LOGIN CREATEDB PASSWORD :'gpubroker_password';
CREATE DATABASE gpubroker OWNER gpubroker;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
SQL
