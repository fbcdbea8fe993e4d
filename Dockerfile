# Production image: gunicorn by default; the worker, beat and release commands are in Procfile.
# Configure it through the environment (see .env.example); DEBUG stays at its default unless set,
# so production must pass DEBUG=false with SECRET_KEY, ALLOWED_HOSTS and the Stripe keys.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 app
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# var/ holds the collected static files, the beat schedule and the data exports (a volume in
# docker-compose.yml, which takes this folder's owner): they must belong to the app user.
RUN mkdir -p var/exports && chown -R app:app var
USER app

# Dummy secrets only so that the settings import; nothing here reaches the running image's env.
RUN SECRET_KEY=build STRIPE_SECRET_KEY=sk_build STRIPE_PUBLISHABLE_KEY=pk_build STRIPE_WEBHOOK_SECRET=whsec_build \
    DEBUG=false python manage.py collectstatic --noinput

EXPOSE 8000
CMD ["sh", "-c", "exec gunicorn billing_portal.wsgi --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_CONCURRENCY:-4} --access-logfile -"]
