"""REST API: Faust web views in a Blueprint, request parsing and the auth seam."""
