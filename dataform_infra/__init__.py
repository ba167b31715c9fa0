"""dataform-infra: least-privilege Terraform for Google Cloud Dataform, rendered from a typed spec."""

__version__ = "0.1.0"

# The oldest Terraform dfinfra runs and renders for (`required_version` in every module): one place.
MINIMUM_TERRAFORM = (1, 5, 0)
