"""Running Terraform: finding the binary, driving it through python-terraform, reading its plans."""
