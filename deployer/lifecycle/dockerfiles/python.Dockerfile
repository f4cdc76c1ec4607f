# Base for Python agents and services (Python >= 3.12: the Zynd SDK needs it). BASE is the public image
# by default; where no registry can be reached, `deployer images bootstrap` makes one from a Debian
# trixie rootfs and `images build` passes it here.
#
# The SDK is installed in a build stage that alone sees build/ (pip settings, the pinned SDK version,
# the CA of a TLS-intercepting proxy): only the virtualenv comes across, so no layer keeps them.
# Few instructions: on slow storage drivers (fuse-overlayfs) every one is a container commit.
ARG BASE=python:3.12-slim
FROM ${BASE} AS build
COPY build /deployer-build/build
# A virtualenv keeps installs off the distribution's Python (PEP 668) on every base.
RUN python3 -c 'import sys; assert sys.version_info >= (3, 12), "the base must have Python >= 3.12, not " + sys.version' \
 && python3 -m venv /opt/venv \
 && . /deployer-build/build/env \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-warn-script-location \
      "zyndai-agent[heartbeat]==${ZYND_SDK_VERSION:?}" \
 && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
 && cp /deployer-build/build/deployer_app_deps.py "$site/" \
 && echo 'import deployer_app_deps' > "$site/deployer_app_deps.pth" \
 && /opt/venv/bin/python -c 'import zyndai_agent, importlib.metadata as m; print("zyndai-agent", m.version("zyndai-agent"), "importable")'

FROM ${BASE}
COPY --from=build /opt/venv /opt/venv
# /opt/app-deps: a deployment's own packages, installed by its image build (see deployer_app_deps.py).
ENV PATH=/opt/app-deps/bin:/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8
WORKDIR /app
ARG BASE KIND=agent ZYND_SDK_VERSION RECIPE
LABEL deployer.managed="true" deployer.role="base" deployer.runtime="python" deployer.kind="${KIND}" \
      deployer.base="${BASE}" deployer.recipe="${RECIPE}" deployer.zynd-sdk-version="${ZYND_SDK_VERSION}"
