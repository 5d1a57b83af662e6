#!/bin/sh
# Prints a ready-to-use .env: .env.example with every variable that docker-compose.yaml requires
# (${VAR:?...}) and the example leaves empty filled with a fresh random value. Venue API keys stay
# empty: they come from the venue (or from `docker compose logs venue-sandbox`).
#   sh include/docker/generate-env.sh > .env
set -eu
cd "$(dirname "$0")/../.."

required=$(grep -o '\${[A-Za-z_][A-Za-z0-9_]*:?' docker-compose.yaml | sed 's/^\${//; s/:?$//' | sort -u)

while IFS= read -r line || [ -n "$line" ]; do
  name=${line%%=*}
  case "$line" in
    [A-Za-z_]*=)
      if printf '%s\n' "$required" | grep -qxF "$name"; then
        case "$name" in
          *FERNET*) value=$(openssl rand -base64 32 | tr '+/' '-_') ;;  # url-safe base64 of 32 bytes
          *ACCESS_KEY_ID*) value=$(openssl rand -hex 8) ;;  # MinIO: access keys up to 20 characters
          MINIO_*|*S3_SECRET*) value=$(openssl rand -hex 16) ;;  # MinIO: secret keys up to 40 characters
          *) value=$(openssl rand -hex 32) ;;
        esac
        line="$name=$value"
      fi
      ;;
  esac
  printf '%s\n' "$line"
done < .env.example
