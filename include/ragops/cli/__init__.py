"""The `ragops` command: a thin layer over the library (see the contract in DESIGN.md)."""
