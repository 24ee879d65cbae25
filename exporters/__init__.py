"""Export specs and the engine that streams any spec from the source into S3 (no Faust here)."""
