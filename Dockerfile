# Rapport in a container: the same `make` targets as the README, as a non-root user,
# with the database (SQLite by default) and the key file in the /data volume.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install --yes --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 rapport \
    && mkdir /data && chown rapport:rapport /data

WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY alliance alliance
COPY bot bot
COPY handlers handlers
COPY schedules schedules
COPY store store
RUN make install && chown -R rapport:rapport /app

USER rapport
ENV RAPPORT_DATA_DIR=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME ["/data"]
# Webhook mode listens here when RAPPORT_WEBHOOK_URL is set; polling needs no port.
EXPOSE 8443
CMD ["make", "run"]
