# The deployer's own image: one image, one command per service (see docker-compose.yml).
# BASE is the public Python image by default; where no registry can be reached, pass an image made
# offline (`deployer images bootstrap` makes deployer/debian-base:trixie, which has python3 3.13).
# Build arguments, both paths inside the build context and both seen by the build stage only:
#   CA_BUNDLE       a CA bundle (PEM) pip trusts, for builds behind a TLS-intercepting proxy
#   PIP_FIND_LINKS  a wheelhouse for builds that cannot reach a package index (empty means the index);
#                   its wheels must fit the base's Python, e.g. on the trixie base (3.13):
#     pip download -d .wheelhouse --only-binary=:all: --python-version 3.13 '.[flower]' setuptools
#     pip wheel --no-deps -w .wheelhouse .
ARG BASE=python:3.12-slim
FROM ${BASE} AS build
ARG PIP_FIND_LINKS= CA_BUNDLE=
LABEL deployer.stage="build"
# The dependencies first, from pyproject.toml alone: a change of the source reuses this layer.
COPY pyproject.toml ${CA_BUNDLE:-pyproject.toml} /src/
COPY ${PIP_FIND_LINKS:-pyproject.toml} /src/wheels/
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN cd /src && python3 -m venv /opt/deployer \
 && if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="/src/$(basename "$CA_BUNDLE")"; fi \
 && if [ -n "$PIP_FIND_LINKS" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/src/wheels; fi \
 && python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['flower']))" > requirements.txt \
 && /opt/deployer/bin/pip install -r requirements.txt
COPY . /src/app
RUN if [ -n "$PIP_FIND_LINKS" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/src/wheels; fi \
 && if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="/src/$(basename "$CA_BUNDLE")"; fi \
 && /opt/deployer/bin/pip install --no-deps /src/app

# The source, the wheelhouse and the CA stay in the build stage; only the virtualenv comes across.
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
