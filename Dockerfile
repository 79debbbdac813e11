# captchala-emulator: a local fake of the CaptchaLa CAPTCHA service, for CI and development.
#   docker build -t captchala-emulator .
#   docker run --rm -p 8080:8080 captchala-emulator
# Every `serve` option has an env twin CAPTCHALA_EMULATOR_*; configure the container with
# those (the HEALTHCHECK reads the same variables to find the port and the scheme).
# The control plane /_emulator/ answers only loopback Host names: to reach it from another
# container by its service name, allow that name, e.g. -e CAPTCHALA_EMULATOR_ALLOWED_HOST=captchala
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only the package: a venv makes the same install work on the official image and on a
# Debian-python base (whose system pip refuses installs, PEP 668). The source is removed after;
# profiles/ is there because emulator/profiles links to it (the built-in fault profiles).
COPY pyproject.toml README.md /tmp/src/
COPY profiles /tmp/src/profiles
COPY emulator /tmp/src/emulator
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "/tmp/src[redis,tls]" \
 && rm -rf /tmp/src \
 && groupadd --gid 10001 emulator \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin emulator \
 && mkdir -p /data/tls \
 && chown -R emulator:emulator /data

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/data \
    CAPTCHALA_EMULATOR_HOST=0.0.0.0 \
    CAPTCHALA_EMULATOR_PORT=8080 \
    CAPTCHALA_EMULATOR_STORE=sqlite:////data/state.db \
    CAPTCHALA_EMULATOR_TLS_DIR=/data/tls

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["captchala-emulator", "healthcheck"]

# Exec form: gunicorn is PID 1, gets SIGTERM directly and stops gracefully within 3 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["captchala-emulator"]
CMD ["serve"]
