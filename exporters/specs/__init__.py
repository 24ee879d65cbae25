"""One module per export type, each declaring a single ExportSpec named SPEC."""
