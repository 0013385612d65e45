-- Roles and databases of the compose stack (the local stack creates the same in stack.sh).
CREATE ROLE gpubroker LOGIN CREATEDB PASSWORD 'gpubroker';
CREATE DATABASE gpubroker OWNER gpubroker;
CREATE ROLE airflow LOGIN PASSWORD 'airflow';
CREATE DATABASE airflow OWNER airflow;
