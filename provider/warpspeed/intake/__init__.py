"""Intake: the request schema, the pure collect rules and the service that drains SQS exactly once."""
