"""webr-dagster: the WebR method (webr/) wired to Dagster assets on DuckDB."""
