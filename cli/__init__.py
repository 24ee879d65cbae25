"""`exportctl`: the command line client of export-service's REST API."""
