-- The ragops registry lives beside Airflow's metadata database on the same Postgres server.
CREATE USER ragops WITH PASSWORD 'ragops';
CREATE DATABASE ragops OWNER ragops;
