"""The local development stack: Kafka, FerretDB and SeaweedFS as processes, and dataset loading.

Import the modules directly (`devstack.stack`, `devstack.dataset`, `devstack.demo`): this file
imports nothing, so the dataset parser stays usable without Kafka or S3 client libraries.
"""
