"""The example project's own app: the upload page and the list of finished uploads."""
