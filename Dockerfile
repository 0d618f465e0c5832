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
COPY review review
COPY schedules schedules
COPY store store
COPY web web
RUN make install && chown -R rapport:rapport /app

USER rapport
# The dashboard listens on all of the container's interfaces; publish its port only to the
# practice's HTTPS reverse proxy (docs/operations.md), never straight to the internet.
ENV RAPPORT_DATA_DIR=/data \
    RAPPORT_WEB_LISTEN=0.0.0.0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
VOLUME ["/data"]
# Webhook mode listens on 8443 when RAPPORT_WEBHOOK_URL is set; the dashboard on 8080.
EXPOSE 8443 8080
CMD ["make", "run"]
