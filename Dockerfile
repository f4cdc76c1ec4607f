# The deployer's own image: one image, one command per service (see docker-compose.yml).
# BASE is the public Python image by default; where no registry can be reached, pass an image made
# offline (`deployer images bootstrap` makes deployer/debian-base:bookworm, which has python3).
# PIP_FIND_LINKS names a wheelhouse inside the build context, for builds that cannot reach a package
# index (empty means the index):
#   pip wheel -w .wheelhouse '.[flower]' setuptools wheel async-timeout
# setuptools builds the project from it; redis wants async-timeout on Python < 3.11.3 (Debian's 3.11.2).
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
ARG PIP_FIND_LINKS=
LABEL deployer.stage="build"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY . /src
WORKDIR /src
RUN python3 -m venv /opt/deployer \
 && if [ -n "$PIP_FIND_LINKS" ]; then src="--no-index --find-links $PIP_FIND_LINKS"; else src=""; fi \
 && /opt/deployer/bin/pip install --no-cache-dir $src '.[flower]'

# The source and the wheelhouse stay in the build stage; only the virtualenv comes across.
FROM ${BASE}
COPY --from=build /opt/deployer /opt/deployer
ENV PATH=/opt/deployer/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8
RUN deployer --help >/dev/null
WORKDIR /var/lib/deployer
LABEL org.opencontainers.image.title="deployer"
EXPOSE 8000 7778 5555
CMD ["deployer", "serve", "--host", "0.0.0.0"]
