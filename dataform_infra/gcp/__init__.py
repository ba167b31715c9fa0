"""Google Cloud APIs dfinfra calls directly (Secret Manager, IAM, Service Usage).

Imported only by `secret` and `doctor`: rendering and planning never load Google's client libraries.
"""
