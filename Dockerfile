# syntax=docker/dockerfile:1
# export-service: the Faust worker (REST API on 6066) as a small non-root image.
#
#   docker build -t export-service:local .
#   docker run --rm -p 6066:6066 -e KAFKA_BROKER_URL=kafka://broker:9092 ... export-service:local
#
# Stage 1 builds the project's wheel and wheels of all its dependencies; stage 2 installs them
# offline into a virtualenv, so no build tool, cache or source tree ends up in the image.

ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (see [tool.hatch.build] in pyproject.toml).
COPY pyproject.toml README.md export_service.py ./
COPY core ./core
COPY topics ./topics
COPY exporters ./exporters
COPY agents ./agents
COPY web ./web
COPY cli ./cli
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="export-service" \
      org.opencontainers.image.description="Kafka-driven export worker: MongoDB to CSV/ZIP in S3"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/export-service \
    PATH=/opt/export-service/bin:$PATH
# Settings (core/settings.py): listen on every interface inside a container, and keep Faust's
# local state in a directory the service user owns (mount a volume there to keep it).
ENV WEB_HOST=0.0.0.0 \
    WEB_PORT=6066 \
    DATA_DIR=/var/lib/export-service
# The venv gets no pip of its own; the base image's pip installs into it, offline.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip "$VIRTUAL_ENV" \
    && python -m pip --python "$VIRTUAL_ENV/bin/python" install \
        --no-index --find-links=/wheels export-service \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home \
        --home-dir /var/lib/export-service --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0750 /var/lib/export-service
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/export-service
EXPOSE 6066
# Liveness only (/heartbeat): /ready is for whatever routes traffic (compose, Kubernetes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/heartbeat' % os.environ.get('WEB_PORT', '6066'), timeout=4)" || exit 1
# Faust commits offsets and flushes its table on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["export-service", "worker"]
