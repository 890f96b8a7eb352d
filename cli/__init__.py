"""The `evergreen` command line: thin wrappers that run the Prefect flows in-process."""
