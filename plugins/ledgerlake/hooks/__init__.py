"""Hooks turn Airflow connections into the plain settings the rest of ledgerlake takes."""
