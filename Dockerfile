# The production image: one image for web (uvicorn, config/server.py), worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv

# uv pinned to the version that wrote uv.lock, copied from its official image.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

WORKDIR /app
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
ENV PATH=/opt/venv/bin:$PATH \
    ALONGSIDE_ENV=production \
    STATIC_ROOT=/app/staticfiles \
    ALONGSIDE_VAR_DIR=/app/var

# Settings demand the production values even to collect static files; these placeholders exist
# only for this build step and are never in the running container's environment.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    REDIS_URL=redis://collectstatic-only:6379/0 ALLOWED_HOSTS=collectstatic.invalid \
    SITE_URL=https://collectstatic.invalid \
    python manage.py collectstatic --noinput --verbosity 0

RUN useradd --system --uid 10001 --home-dir /app --no-create-home alongside \
    && mkdir -p /app/var && chown alongside /app/var
USER alongside

EXPOSE 8000
CMD ["python", "-m", "config.server", "--host", "0.0.0.0", "--port", "8000"]
