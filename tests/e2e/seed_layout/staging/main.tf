# A hand-written setup in the layout of "Terraforming Dataform" (Dataform 101, part 2): one folder per
# environment, the repository and both environments' configs in staging. The names match the shipped
# environments, so `dfinfra adopt` finds these objects. (Its traps are fixed here only as far as the
# offline cloud requires: it knows no *_iam_binding, and the token version is added by `dfinfra secret set`.)
terraform {
  required_providers {
    google      = { source = "hashicorp/google" }
    google-beta = { source = "hashicorp/google-beta" }
  }
}

provider "google" {
  project = "acme-analytics-staging"
  region  = "europe-west2"
}

provider "google-beta" {
  project = "acme-analytics-staging"
  region  = "europe-west2"
}

resource "google_project_service" "bigquery" {
  service            = "bigquery.googleapis.com"
  disable_on_destroy = false
}

resource "google_project_service" "dataform" {
  service            = "dataform.googleapis.com"
  disable_on_destroy = false
}

resource "google_project_service" "iam" {
  service            = "iam.googleapis.com"
  disable_on_destroy = false
}

resource "google_project_service" "secretmanager" {
  service            = "secretmanager.googleapis.com"
  disable_on_destroy = false
}

resource "google_service_account" "dataform_runner" {
  account_id   = "dataform-staging-runner"
  display_name = "dataform runner"
  depends_on   = [google_project_service.iam]
}

resource "google_bigquery_dataset" "marts" {
  dataset_id = "staging_marts"
  location   = "europe-west2"
  depends_on = [google_project_service.bigquery]
}

resource "google_bigquery_dataset" "assertions" {
  dataset_id = "dataform_assertions"
  location   = "europe-west2"
  depends_on = [google_project_service.bigquery]
}

resource "google_secret_manager_secret" "github_token" {
  secret_id = "dataform-github-token"

  replication {
    auto {}
  }
  depends_on = [google_project_service.secretmanager]
}

resource "google_dataform_repository" "repo" {
  name            = "analytics"
  depends_on      = [google_project_service.dataform]
  service_account = google_service_account.dataform_runner.email

  git_remote_settings {
    url                                 = "https://github.com/acme/analytics-dataform.git"
    default_branch                      = "main"
    authentication_token_secret_version = "${google_secret_manager_secret.github_token.id}/versions/latest"
  }
}

resource "google_dataform_repository_release_config" "staging" {
  provider      = google-beta
  repository    = google_dataform_repository.repo.name
  name          = "staging-nightly"
  git_commitish = "main"
  cron_schedule = "30 6 * * *"

  code_compilation_config {
    default_database = "acme-analytics-staging"
    default_schema   = "staging_marts"
  }
}

resource "google_dataform_repository_workflow_config" "staging" {
  provider       = google-beta
  repository     = google_dataform_repository.repo.name
  name           = "staging-daily"
  release_config = google_dataform_repository_release_config.staging.id
  cron_schedule  = "45 6 * * *"

  invocation_config {
    service_account = google_service_account.dataform_runner.email
  }
}

resource "google_dataform_repository_release_config" "prod" {
  provider      = google-beta
  repository    = google_dataform_repository.repo.name
  name          = "prod-nightly"
  git_commitish = "main"
  cron_schedule = "30 6 * * *"

  code_compilation_config {
    default_database = "acme-analytics-prod"
    default_schema   = "marts"
  }
}
