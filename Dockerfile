# rootcheck: `rootcheck serve` in a slim image, non-root, with its SQLite state on a volume.
# Build stage: a virtualenv with rootcheck and its wheels (no compiler is needed or shipped).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/rootcheck
COPY pyproject.toml README.md requirements.lock ./
# Exactly the tested versions, checked against their hashes; then rootcheck itself, adding nothing.
RUN /opt/rootcheck/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY bot ./bot
RUN /opt/rootcheck/bin/pip install --no-cache-dir --no-deps .

# Final stage: the virtualenv only, run as an unprivileged user.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/rootcheck --shell /usr/sbin/nologin rootcheck \
    && mkdir -p /var/lib/rootcheck && chown rootcheck:rootcheck /var/lib/rootcheck
COPY --from=build /opt/rootcheck /opt/rootcheck
ENV PATH=/opt/rootcheck/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ROOTCHECK_DATABASE_URL=sqlite:////var/lib/rootcheck/rootcheck.db
USER rootcheck
WORKDIR /var/lib/rootcheck
VOLUME ["/var/lib/rootcheck"]
EXPOSE 3000
# `rootcheck health` asks the local /healthz, which is served in HTTP and in Socket Mode alike.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["rootcheck", "health"]
ENTRYPOINT ["rootcheck"]
CMD ["serve"]
