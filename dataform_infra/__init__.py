"""dataform-infra: least-privilege Terraform for Google Cloud Dataform, rendered from a typed spec."""

__version__ = "0.1.0"
