"""The `deployer` command line."""
