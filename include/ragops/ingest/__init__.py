"""Parse, chunk, validate and embed documents; plan and run refreshes of the index."""
