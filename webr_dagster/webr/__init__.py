"""The WebR method as pure functions on plain data: no Dagster, no database, no network."""
