# syntax=docker/dockerfile:1
# One image for `dnsroll worker` and `dnsroll api` (docker-compose.yml runs
# both). The worker runs ansible-playbook over SSH, so the runtime image has
# Debian's ansible (its json stdout callback lives in ansible.posix, which
# ansible-core alone lacks) and an SSH client, and the playbooks in
# /app/ansible, where fleet configs in /app/fleets find them as ../ansible.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -o /out/dnsroll ./cmd/dnsroll

FROM debian:bookworm-slim
# bind9-utils: named-compilezone, by which zone files are read as BIND reads them.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       ansible openssh-client ca-certificates python3 bind9-utils \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/dnsroll --shell /usr/sbin/nologin dnsroll
WORKDIR /app
COPY --from=build /out/dnsroll /usr/local/bin/dnsroll
COPY ansible/ /app/ansible/
# The operator's fleets and their zone files are mounted here
# (docker-compose.yml); fleets name them as ../zones/ and the playbooks
# above as ../ansible/. The repository's fleets/ are the labs', not for
# an image that runs against the real Linode API.
RUN mkdir -p /app/fleets /app/zones
# The worker's state: its known_hosts file of the machines' SSH host keys
# (docker-compose.yml keeps it on a volume, so pins survive upgrades).
RUN install -d -m 0700 -o dnsroll -g dnsroll /var/lib/dnsroll
ENV DNSROLL_STATE_DIR=/var/lib/dnsroll
USER dnsroll
# 8080: `dnsroll api`; 9090: `dnsroll worker --metrics-addr`.
EXPOSE 8080 9090
ENTRYPOINT ["dnsroll"]
CMD ["worker", "--fleets", "/app/fleets"]
