"""Core of the export service: settings, the Faust app, records, errors, ports and adapters."""
