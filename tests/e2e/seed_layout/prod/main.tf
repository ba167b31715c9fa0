# The prod folder of the same hand-written setup: prod's runner and datasets (its configs are in staging/).
terraform {
  required_providers {
    google = { source = "hashicorp/google" }
  }
}

provider "google" {
  project = "acme-analytics-prod"
  region  = "europe-west2"
}

resource "google_project_service" "bigquery" {
  service            = "bigquery.googleapis.com"
  disable_on_destroy = false
}

resource "google_project_service" "iam" {
  service            = "iam.googleapis.com"
  disable_on_destroy = false
}

resource "google_service_account" "dataform_runner" {
  account_id   = "dataform-prod-runner"
  display_name = "dataform runner (prod)"
  depends_on   = [google_project_service.iam]
}

resource "google_bigquery_dataset" "marts" {
  dataset_id = "marts"
  location   = "europe-west2"
  depends_on = [google_project_service.bigquery]
}
