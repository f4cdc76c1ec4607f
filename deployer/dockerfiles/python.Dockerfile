# Base for Python agents and services. BASE is the public image by default; where no registry can be
# reached, `deployer images bootstrap` makes one from a Debian rootfs and `images build` passes it here.
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG KIND=agent
# A virtualenv keeps installs off the distribution's Python (PEP 668) on every base.
RUN python3 -m venv /opt/venv && /opt/venv/bin/python -m pip --version
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8
WORKDIR /app
LABEL deployer.managed="true" deployer.role="base" deployer.runtime="python" deployer.kind="${KIND}"
EXPOSE 5000
