# Redis from Debian's packages on the offline base (docker-compose.offline.yml).
ARG BASE=deployer/debian-base:trixie
FROM ${BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/*
USER redis
WORKDIR /var/lib/redis
CMD ["redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
