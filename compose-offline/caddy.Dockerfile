# Caddy from Debian's packages on the offline base (docker-compose.offline.yml), laid out like the
# public caddy image: config under /config (autosave, for --resume), certificates and the local CA
# under /data; wget for the health check.
ARG BASE=deployer/debian-base:trixie
FROM ${BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy wget ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /config /data
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
CMD ["caddy", "run"]
