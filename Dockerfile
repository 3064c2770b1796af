# envwatch — one image for every envwatch process of the stack (bridge, gateway, worker, api,
# and the one-shot `envwatch deploy mqtt`). docs/deploy.md; deploy/compose.yaml; deploy/k8s/.
#
# Installs exactly uv.lock (`uv sync --frozen --no-dev`), the same versions the tests ran with.
# Runs as the unprivileged user envwatch (uid/gid 10001). No secret is baked in: every secret
# comes at run time from a file (`ENVWATCH_*_FILE`, compose/Kubernetes secrets).
FROM python:3.11.13-slim-bookworm

# uv: the version the Makefile bootstraps (UV_VERSION), so the image and `make` agree.
ARG UV_VERSION=0.13.8
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN pip install "uv==${UV_VERSION}" \
    && groupadd --system --gid 10001 envwatch \
    && useradd --system --uid 10001 --gid envwatch --home-dir /app --shell /usr/sbin/nologin envwatch \
    && install -d -o envwatch -g envwatch -m 0750 /var/lib/envwatch /var/lib/envwatch/spool \
       /var/lib/envwatch/faust /var/lib/envwatch/outbox

WORKDIR /app
# Dependencies first (a layer that changes only with uv.lock), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY rules ./rules
COPY alerts ./alerts
COPY ingest ./ingest
COPY streams ./streams
# deploy/ holds the reference catalogue, the mosquitto templates `envwatch deploy mqtt` reads
# and the Grafana dashboards (`envwatch grafana` imports deploy.grafana from the source tree).
COPY deploy ./deploy
RUN uv sync --frozen --no-dev && rm -rf deploy/secrets

ENV PATH=/app/.venv/bin:$PATH \
    ENVWATCH_CONFIG_DIR=/app/deploy/config \
    ENVWATCH_DATA_DIR=/var/lib/envwatch/faust \
    ENVWATCH_SPOOL_DIR=/var/lib/envwatch/spool \
    ENVWATCH_OUTBOX_PATH=/var/lib/envwatch/outbox/outbox.db

USER envwatch:envwatch
ENTRYPOINT ["envwatch"]
CMD ["--help"]
