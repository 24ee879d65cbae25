"""Kafka topics of the service and the export status table, declared beside the app."""
