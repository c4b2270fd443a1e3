-- Runs once when the PostgreSQL volume is created: Dagster gets its own database.
CREATE DATABASE dagster;
