"""Create or drop a CI run's throwaway PostgreSQL database: pgdb.py ADMIN_URL NAME create|drop."""

import sys

import psycopg

url, name, action = sys.argv[1:]
with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
    if action == "create":
        conn.execute(f'CREATE DATABASE "{name}"')
    else:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
